//! True line numbers for CSV files, whatever their line endings and blank lines.
//!
//! The csv crate accepts `\n`, `\r\n` and a bare `\r` as a record terminator, but it
//! counts lines by `\n` alone, and it reports a record at the position where it started
//! looking for it, before the line breaks it skipped: in a file saved with classic Mac line
//! endings every row would be line 1; after a `\r\n` (found by the fuzzer: the `\n` is
//! skipped as the start of the next record) or a blank line, one line too high. [`CsvLines`]
//! sits between the input and the csv reader and
//! - turns each `\r\n` or bare `\r` that ends a record into `\n`;
//! - turns each empty line after the first record into a line holding one space: a blank
//!   record, which the phone and user CSV readers skip like any all-blank row, so the reader
//!   sees every line and numbers each record by its own.
//!
//! It follows the reader's own quoting (the default dialect: `,` and `"`), so line breaks
//! inside a quoted cell reach the cell unchanged.

use std::io::{self, BufRead, BufReader, Read};

/// Where the csv reader is within a record, as far as a `\r` is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    /// At the start of a cell: a `"` here opens a quoted cell.
    CellStart,
    /// Inside an unquoted cell (or after a quoted cell's closing quote): `"` is a plain byte.
    Unquoted,
    /// Inside a quoted cell: line breaks are part of the cell.
    Quoted,
    /// Just after a `"` inside a quoted cell: another `"` is an escaped quote, anything else
    /// ends the quoting.
    QuoteInQuoted,
}

impl Quoting {
    /// The state after `byte`; `None` for a line break that ends the record here.
    fn after(self, byte: u8) -> Self {
        match (self, byte) {
            (Self::Quoted, b'"') => Self::QuoteInQuoted,
            (Self::Quoted, _) => Self::Quoted,
            (Self::CellStart, b'"') | (Self::QuoteInQuoted, b'"') => Self::Quoted,
            (_, b',' | b'\r' | b'\n') => Self::CellStart,
            _ => Self::Unquoted,
        }
    }
}

/// A reader that gives the csv crate input it counts lines of truly (see the module comment).
#[derive(Debug)]
pub struct CsvLines<R> {
    inner: BufReader<R>,
    state: Quoting,
    /// Translated bytes not handed out yet.
    queued: Vec<u8>,
    /// The last byte was a record-ending `\r`: a `\n` now completes it, not a new line.
    after_cr: bool,
    /// Nothing but line breaks since the last record ended.
    at_line_start: bool,
    /// The first record has begun (blank lines before it are left alone: the csv reader
    /// skips them, and the first record is line 1 for the header checks).
    records_begun: bool,
}

impl<R: Read> CsvLines<R> {
    pub fn new(input: R) -> Self {
        Self::with_capacity(1 << 16, input)
    }

    fn with_capacity(capacity: usize, input: R) -> Self {
        Self {
            inner: BufReader::with_capacity(capacity, input),
            state: Quoting::CellStart,
            queued: Vec::new(),
            after_cr: false,
            at_line_start: true,
            records_begun: false,
        }
    }

    /// Translates up to `limit` more input bytes into `queued`; `false` at the end.
    fn fill_queue(&mut self, limit: usize) -> io::Result<bool> {
        let available = self.inner.fill_buf()?;
        if available.is_empty() {
            return Ok(false);
        }
        let mut used = 0;
        for &byte in available.iter().take(limit) {
            used += 1;
            let ends_record = self.state != Quoting::Quoted && (byte == b'\r' || byte == b'\n');
            if ends_record {
                // The `\n` of a `\r\n` was written as the `\r`'s `\n` already.
                let completes_crlf = byte == b'\n' && self.after_cr;
                if !completes_crlf {
                    if self.at_line_start && self.records_begun {
                        // An empty line: make it a blank record, which the readers skip.
                        self.queued.push(b' ');
                    }
                    self.queued.push(b'\n');
                }
                self.after_cr = byte == b'\r';
                self.at_line_start = true;
            } else {
                self.queued.push(byte);
                self.after_cr = false;
                self.at_line_start = false;
                self.records_begun = true;
            }
            self.state = self.state.after(byte);
        }
        self.inner.consume(used);
        Ok(true)
    }
}

impl<R: Read> Read for CsvLines<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.queued.is_empty() {
            if !self.fill_queue(out.len())? {
                break;
            }
        }
        let n = self.queued.len().min(out.len());
        for (slot, byte) in out.iter_mut().zip(self.queued.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(input: &[u8], chunk: usize) -> Vec<u8> {
        // A reader that hands out `chunk` bytes at a time, to cross every buffer boundary.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut output = Vec::new();
        let mut reader = CsvLines::with_capacity(chunk, Trickle(input, chunk));
        let mut buf = vec![0; chunk];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            output.extend_from_slice(&buf[..n]);
        }
        output
    }

    #[test]
    fn record_terminators_become_newlines_and_cells_keep_their_bytes() {
        let cases: [(&[u8], &[u8]); 8] = [
            (b"a,b\rc,d\r", b"a,b\nc,d\n"),
            (b"a,b\r\nc,d\r\n", b"a,b\nc,d\n"),
            (b"a,b\nc,d", b"a,b\nc,d"),
            (b"a,\"x\ry\"\rc,d", b"a,\"x\ry\"\nc,d"),
            (b"a,\"x\"\"\ry\"\r", b"a,\"x\"\"\ry\"\n"),
            (b"a\"b\rc", b"a\"b\nc"),
            (b"\n\ra\n\nb\r\n\r\nc\r\r", b"\n\na\n \nb\n \nc\n \n"),
            (b"a,\"x\r\ny\"\r\nb", b"a,\"x\r\ny\"\nb"),
        ];
        for (input, expected) in cases {
            for chunk in [1, 2, 3, 64] {
                assert_eq!(
                    through(input, chunk),
                    expected,
                    "{:?} in chunks of {chunk}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn the_csv_reader_then_counts_true_lines() {
        let input: &[u8] = b"email,name\rann@example.com,Ann\r\rbob@example.com,\"B\rob\"\rcat@example.com,Cat";
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(CsvLines::new(input));
        let rows: Vec<(u64, String)> = reader
            .records()
            .map(|r| r.unwrap())
            .filter(|r| !r.iter().all(|cell| cell.trim().is_empty()))
            .map(|r| (r.position().unwrap().line(), r[1].to_owned()))
            .collect();
        assert_eq!(rows, [(2, "Ann".to_owned()), (4, "B\rob".to_owned()), (5, "Cat".to_owned())]);
    }
}
