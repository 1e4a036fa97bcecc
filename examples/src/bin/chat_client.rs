//! The tutorials' interactive chat client: reads lines, sends them, prints
//! the server's reply.
//!
//! Python:
//!
//! ```python
//! client = socket(AF_INET, SOCK_STREAM); client.connect(('127.0.0.1', 8080))
//! while True:
//!     msg = input('>>: ').strip()
//!     if not msg: continue
//!     client.send(msg.encode('utf-8'))
//!     msg = client.recv(1024)
//!     print(msg.decode('utf-8'))
//! ```
//!
//! Run: `cargo run -p multiproc-examples --bin chat_client [-- ADDR]`
//! (default `127.0.0.1:8080`; start `chat_server` first). It ends at the
//! end of its input (Ctrl-D).

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let mut client = TcpStream::connect(&addr)?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        print!(">>: ");
        std::io::stdout().flush()?;
        let Some(line) = lines.next() else { break };
        let msg = line?;
        let msg = msg.trim();
        if msg.is_empty() {
            continue;
        }
        client.write_all(msg.as_bytes())?;
        // The reply is as long as the message; TCP may deliver it in pieces.
        let mut reply = vec![0u8; msg.len()];
        if client.read_exact(&mut reply).is_err() {
            println!("\nserver closed the connection");
            break;
        }
        println!("{}", String::from_utf8_lossy(&reply));
    }
    println!();
    Ok(())
}
