//! Drawing into any writer, terminal or not: what
//! [`Bars::draw_into`](super::Bars::draw_into) and
//! [`Bars::force_draw`](super::Bars::force_draw) give indicatif, which by
//! itself draws nothing where stderr is not a terminal.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use indicatif::TermLike;

/// The width a writer that is not a terminal is drawn at.
const WIDTH: u16 = 100;

/// A writer as indicatif's terminal: lines, and ANSI cursor movements.
pub(super) struct Writer(Mutex<Box<dyn Write + Send>>);

impl Writer {
    pub(super) fn new(w: impl Write + Send + 'static) -> Self {
        Writer(Mutex::new(Box::new(w)))
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).write_all(bytes)
    }

    fn escape(&self, n: usize, code: char) -> io::Result<()> {
        if n == 0 { Ok(()) } else { self.write(format!("\x1b[{n}{code}").as_bytes()) }
    }
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Writer")
    }
}

impl TermLike for Writer {
    fn width(&self) -> u16 {
        WIDTH
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.escape(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.escape(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.escape(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.escape(n, 'D')
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.write(format!("{s}\n").as_bytes())
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.write(s.as_bytes())
    }

    fn clear_line(&self) -> io::Result<()> {
        self.write(b"\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).flush()
    }
}
