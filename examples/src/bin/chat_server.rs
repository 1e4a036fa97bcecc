//! The tutorials' concurrent chat server: one process per accepted
//! connection, handed the socket as an argument, replying with the
//! upper-cased message.
//!
//! Python:
//!
//! ```python
//! server = socket(AF_INET, SOCK_STREAM)
//! server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
//! server.bind(('127.0.0.1', 8080)); server.listen(5)
//! def talk(conn, client_addr):
//!     while True:
//!         msg = conn.recv(1024)
//!         if not msg: break
//!         conn.send(msg.upper())
//! while True:
//!     conn, client_addr = server.accept()
//!     p = Process(target=talk, args=(conn, client_addr)); p.start()
//! ```
//!
//! Run: `cargo run -p multiproc-examples --bin chat_server [-- ADDR [CONNECTIONS]]`
//! (default `127.0.0.1:8080`, serving forever like the tutorial; with
//! `CONNECTIONS` it stops accepting after that many and waits for them).
//! Talk to it with `chat_client`. Rust's `TcpListener::bind` sets
//! `SO_REUSEADDR` on Unix, as the tutorial does by hand.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use multiproc::{Handle, process_task};

/// Serves one client: echo every message upper-cased until it hangs up.
#[process_task]
fn talk(conn: Handle<TcpStream>, client_addr: String) {
    let mut conn = conn.into_inner();
    let mut buf = [0u8; 1024];
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if conn.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
            break;
        }
    }
    println!("{client_addr} left (served by process {})", std::process::id());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let limit: Option<usize> = args.next().map(|n| n.parse()).transpose()?;
    let server = TcpListener::bind(&addr)?;
    println!("listening on {}", server.local_addr()?);

    let mut served = Vec::new();
    for conn in server.incoming() {
        let conn = conn?;
        let client_addr = conn.peer_addr()?.to_string();
        println!("{client_addr} connected");
        let p = multiproc::spawn(talk, (Handle::new(conn), client_addr))?;
        served.push(p);
        if limit.is_some_and(|l| served.len() >= l) {
            break;
        }
    }
    for p in served {
        p.join()?;
    }
    println!("server done");
    Ok(())
}
