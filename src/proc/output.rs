//! What tcplab keeps of a program's output, within bounds whatever the program prints: each
//! line at most [`MAX_LINE`] bytes, and of all lines the first and the last [`KEEP_BYTES`]
//! (at most [`KEEP_LINES`] lines each), with a marker line saying what was cut between them.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Line, Stream};

/// Bytes of text kept at each end of a program's output.
pub const KEEP_BYTES: usize = 1 << 20;
/// Lines kept at each end of a program's output: a flood of short lines costs far more than
/// its text, in memory and in a report.
pub const KEEP_LINES: usize = 10_000;
/// Bytes kept of one line; the rest of the line is counted and dropped.
pub const MAX_LINE: usize = 64 << 10;

/// The lines left out between the first and the last part of a long output: tcplab keeps
/// each line up to [`MAX_LINE`] bytes, and the first and the last [`KEEP_BYTES`] of a
/// program's lines (at most [`KEEP_LINES`] each), whatever the program prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// How many lines were left out.
    pub lines: u64,
    /// How many bytes they held.
    pub bytes: u64,
    /// When the first of them was printed, since the program started.
    pub from: Duration,
    /// When the last of them was printed.
    pub to: Duration,
}

impl Cut {
    /// The line that stands for the cut lines in a transcript or a report; on stderr, as it
    /// is tcplab's word, not the program's.
    pub fn marker(&self) -> Line {
        Line {
            at: self.from,
            stream: Stream::Stderr,
            text: format!(
                "[tcplab: {} line(s), {} byte(s) of output cut here, printed from {:.3} s to {:.3} s; the first and last {} MiB (at most {} lines each) are kept]",
                self.lines,
                self.bytes,
                self.from.as_secs_f64(),
                self.to.as_secs_f64(),
                KEEP_BYTES >> 20,
                KEEP_LINES
            ),
        }
    }
}

/// A program's output as kept so far.
#[derive(Default)]
pub(super) struct Output {
    head: Vec<Line>,
    head_bytes: usize,
    head_full: bool,
    tail: VecDeque<Line>,
    tail_bytes: usize,
    cut: Option<Cut>,
    /// Lines received in all, kept or not: a line's sequence number is its index in this count.
    received: usize,
    /// Streams whose reader has not yet seen the end.
    pub(super) open_streams: usize,
}

impl Output {
    pub(super) fn push(&mut self, line: Line) {
        self.received += 1;
        let len = line.text.len();
        if !self.head_full {
            if self.head.len() < KEEP_LINES && self.head_bytes + len <= KEEP_BYTES {
                self.head_bytes += len;
                self.head.push(line);
                return;
            }
            // The head is the output's beginning: once a line misses it, it is closed.
            self.head_full = true;
        }
        self.tail_bytes += len;
        self.tail.push_back(line);
        while self.tail.len() > KEEP_LINES || self.tail_bytes > KEEP_BYTES {
            let Some(old) = self.tail.pop_front() else {
                break;
            };
            self.tail_bytes -= old.text.len();
            let cut = self.cut.get_or_insert(Cut {
                lines: 0,
                bytes: 0,
                from: old.at,
                to: old.at,
            });
            cut.lines += 1;
            cut.bytes += old.text.len() as u64 + 1;
            cut.to = old.at;
        }
    }

    /// Every line kept, with the cut's marker between the first and last parts.
    pub(super) fn lines(&self) -> Vec<Line> {
        let mut lines = Vec::with_capacity(self.head.len() + self.tail.len() + 1);
        lines.extend(self.head.iter().cloned());
        lines.extend(self.cut.as_ref().map(Cut::marker));
        lines.extend(self.tail.iter().cloned());
        lines
    }

    pub(super) fn cut(&self) -> Option<Cut> {
        self.cut
    }

    /// How many lines have been received; pass it to [`Output::since`] later.
    pub(super) fn received(&self) -> usize {
        self.received
    }

    /// The kept lines received after the first `seen`.
    pub(super) fn since(&self, seen: usize) -> impl Iterator<Item = &Line> {
        let head = self.head.iter().skip(seen);
        let tail_first = self.received - self.tail.len();
        let tail = self.tail.iter().skip(seen.saturating_sub(tail_first));
        head.chain(tail)
    }
}

/// Reads `stream` line by line into `output` on a thread of its own.
pub(super) fn read_lines(
    stream: impl Read + Send + 'static,
    kind: Stream,
    started: Instant,
    output: Arc<(Mutex<Output>, Condvar)>,
) -> JoinHandle<()> {
    output.0.lock().expect("output lock").open_streams += 1;
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        while let Ok(Some(dropped)) = next_line(&mut reader, &mut buf) {
            let mut text = super::strip_ansi(&String::from_utf8_lossy(&buf));
            text.truncate(text.trim_end_matches('\r').len());
            if dropped > 0 {
                text.push_str(&format!(
                    " [tcplab: {dropped} more byte(s) of this line cut]"
                ));
            }
            let line = Line {
                at: started.elapsed(),
                stream: kind,
                text,
            };
            output.0.lock().expect("output lock").push(line);
            output.1.notify_all();
        }
        output.0.lock().expect("output lock").open_streams -= 1;
        output.1.notify_all();
    })
}

/// Reads the next line into `buf`, without its newline and keeping at most [`MAX_LINE`]
/// bytes of it. Returns how many bytes of the line were dropped, or `None` at the end.
fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<u64>> {
    buf.clear();
    let mut dropped = 0u64;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            // A last line without a newline is still a line.
            return Ok(any.then_some(dropped));
        }
        any = true;
        let end = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..end.unwrap_or(chunk.len())];
        let take = part.len().min(MAX_LINE - buf.len());
        buf.extend_from_slice(&part[..take]);
        dropped += (part.len() - take) as u64;
        let used = end.map_or(chunk.len(), |i| i + 1);
        reader.consume(used);
        if end.is_some() {
            return Ok(Some(dropped));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize, text: &str) -> Line {
        Line {
            at: Duration::from_millis(i as u64),
            stream: Stream::Stdout,
            text: text.to_string(),
        }
    }

    #[test]
    fn short_output_is_kept_whole() {
        let mut out = Output::default();
        for i in 0..100 {
            out.push(line(i, &i.to_string()));
        }
        assert_eq!(out.cut(), None);
        let texts: Vec<String> = out.lines().into_iter().map(|l| l.text).collect();
        assert_eq!(texts, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn a_flood_of_lines_keeps_both_ends_and_says_what_was_cut() {
        let mut out = Output::default();
        let n = 3 * KEEP_LINES + 7;
        for i in 0..n {
            out.push(line(i, "y"));
        }
        let cut = out.cut().unwrap();
        assert_eq!(cut.lines as usize, n - 2 * KEEP_LINES);
        assert_eq!(cut.bytes, cut.lines * 2, "each cut line counts its newline");
        assert_eq!(cut.from, Duration::from_millis(KEEP_LINES as u64));
        assert_eq!(cut.to, Duration::from_millis((n - KEEP_LINES - 1) as u64));
        let lines = out.lines();
        assert_eq!(lines.len(), 2 * KEEP_LINES + 1);
        assert!(lines[KEEP_LINES].text.starts_with("[tcplab: "));
        assert!(
            lines[KEEP_LINES]
                .text
                .contains(&format!("{} line(s)", cut.lines))
        );
        assert_eq!(
            lines.last().unwrap().at,
            Duration::from_millis(n as u64 - 1)
        );
    }

    #[test]
    fn long_lines_are_bounded_by_bytes() {
        let mut out = Output::default();
        let text = "x".repeat(MAX_LINE);
        let n = 3 * KEEP_BYTES / MAX_LINE;
        for i in 0..n {
            out.push(line(i, &text));
        }
        let kept: usize = out.lines().iter().map(|l| l.text.len()).sum();
        let marker = out.cut().unwrap().marker().text.len();
        assert_eq!(kept - marker, 2 * KEEP_BYTES);
        assert_eq!(
            out.cut().unwrap().lines as usize,
            n - 2 * KEEP_BYTES / MAX_LINE
        );
    }

    #[test]
    fn since_counts_lines_received_even_when_cut() {
        let mut out = Output::default();
        for i in 0..(2 * KEEP_LINES + 10) {
            out.push(line(i, &i.to_string()));
        }
        let seen = out.received();
        out.push(line(0, "new"));
        let new: Vec<&str> = out.since(seen).map(|l| l.text.as_str()).collect();
        assert_eq!(new, ["new"]);
        // Lines cut before they were looked at are not offered; the kept ones are, in order.
        let from_start: Vec<&Line> = out.since(0).collect();
        assert_eq!(from_start.len(), 2 * KEEP_LINES);
        assert_eq!(from_start[0].text, "0");
        assert_eq!(from_start.last().unwrap().text, "new");
    }

    #[test]
    fn next_line_bounds_a_line_and_skips_its_rest() {
        let mut input = vec![b'a'; MAX_LINE + 10];
        input.extend_from_slice(b"\nsecond\r\nlast");
        let mut reader = BufReader::with_capacity(1000, &input[..]);
        let mut buf = Vec::new();
        assert_eq!(next_line(&mut reader, &mut buf).unwrap(), Some(10));
        assert_eq!(buf.len(), MAX_LINE);
        assert_eq!(next_line(&mut reader, &mut buf).unwrap(), Some(0));
        assert_eq!(buf, b"second\r");
        assert_eq!(next_line(&mut reader, &mut buf).unwrap(), Some(0));
        assert_eq!(buf, b"last");
        assert_eq!(next_line(&mut reader, &mut buf).unwrap(), None);
    }
}
