//! A small SMTP server for tests: listens on a random loopback port, speaks enough SMTP for
//! lettre (EHLO/HELO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no STARTTLS),
//! records every message it accepts, and can be told to answer 4xx/5xx to simulate a
//! failing server. Stopped when dropped.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use parking_lot::{Condvar, Mutex};

/// One accepted message, as the client sent it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`).
    pub rcpt_to: Vec<String>,
    /// The message (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
}

impl ReceivedMail {
    /// The first header of that name (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut unfolded: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = unfolded.last_mut() {
                    last.push_str(line);
                }
            } else {
                unfolded.push(line.to_owned());
            }
        }
        unfolded.into_iter().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    pub fn message_id(&self) -> Option<String> {
        self.header("Message-ID")
    }

    pub fn subject(&self) -> Option<String> {
        self.header("Subject")
    }

    /// The body, quoted-printable decoded when it says so.
    pub fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let qp = self.header("Content-Transfer-Encoding").is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
        if qp {
            decode_quoted_printable(body)
        } else {
            body.to_owned()
        }
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'=' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Default)]
struct State {
    received: Vec<ReceivedMail>,
    /// Codes to answer at the end of DATA, one per message, before accepting again.
    fail_next: VecDeque<u16>,
    /// Codes to answer `RCPT TO` of these addresses (lowercase) with.
    reject_rcpt: BTreeMap<String, u16>,
    /// Waited before answering the end of DATA.
    delay: Duration,
    /// Every `AUTH` (user, password) seen.
    credentials: Vec<(String, String)>,
    /// Messages answered with a failure at the end of DATA.
    refused: Vec<ReceivedMail>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

pub struct SmtpSink {
    pub port: u16,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SmtpSink {
    pub fn start() -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), changed: Condvar::new() });
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (Arc::clone(&shared), Arc::clone(&stop));
        let thread =
            std::thread::Builder::new().name("smtp-sink".into()).spawn(move || accept_loop(listener, sh, st))?;
        Ok(SmtpSink { port, shared, stop, thread: Some(thread) })
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The next `count` messages are answered `code` at the end of DATA (and not kept).
    pub fn fail_next(&self, count: usize, code: u16) {
        let mut s = self.shared.state.lock();
        s.fail_next.extend(std::iter::repeat_n(code, count));
    }

    /// `RCPT TO:<address>` is answered `code` from now on.
    pub fn reject_recipient(&self, address: &str, code: u16) {
        self.shared.state.lock().reject_rcpt.insert(address.to_ascii_lowercase(), code);
    }

    /// Waits `delay` before answering each message (a slow server).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.state.lock().delay = delay;
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.state.lock().received.clone()
    }

    /// The messages answered with a failure at the end of DATA so far.
    pub fn refused(&self) -> Vec<ReceivedMail> {
        self.shared.state.lock().refused.clone()
    }

    pub fn credentials(&self) -> Vec<(String, String)> {
        self.shared.state.lock().credentials.clone()
    }

    /// Waits until `pred` holds for the accepted messages (true) or `timeout` passes (false).
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&[ReceivedMail]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.shared.state.lock();
        loop {
            if pred(&s.received) {
                return true;
            }
            if self.shared.changed.wait_until(&mut s, deadline).timed_out() {
                return pred(&s.received);
            }
        }
    }

    /// Waits for at least `n` accepted messages.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |m| m.len() >= n)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (sh, st) = (Arc::clone(&shared), Arc::clone(&stop));
                let _ = std::thread::Builder::new().name("smtp-sink-conn".into()).spawn(move || {
                    let _ = session(stream, &sh, &st);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn reply(out: &mut TcpStream, text: &str) -> std::io::Result<()> {
    out.write_all(text.as_bytes())?;
    out.write_all(b"\r\n")?;
    out.flush()
}

/// Reads one line without its CRLF; `None` at the end of the connection.
fn read_line(input: &mut BufReader<TcpStream>) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

fn address_of(arg: &str) -> String {
    let a = arg.split_once(':').map(|(_, v)| v).unwrap_or(arg).trim();
    let a = a.split_whitespace().next().unwrap_or("");
    a.trim_start_matches('<').trim_end_matches('>').to_owned()
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn failure_text(code: u16) -> String {
    if code >= 500 {
        format!("{code} 5.7.1 simulated permanent failure")
    } else {
        format!("{code} 4.3.0 simulated temporary failure")
    }
}

fn session(stream: TcpStream, shared: &Shared, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    reply(&mut out, "220 sink.test ESMTP test sink")?;
    let mut from: Option<String> = None;
    let mut rcpt: Vec<String> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Some(line) = read_line(&mut input)? else { return Ok(()) };
        let (verb, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => reply(&mut out, "250-sink.test\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760")?,
            "HELO" => reply(&mut out, "250 sink.test")?,
            "AUTH" => {
                let (mechanism, initial) = arg.split_once(' ').unwrap_or((arg, ""));
                let creds = if mechanism.eq_ignore_ascii_case("PLAIN") {
                    let response = if initial.is_empty() {
                        reply(&mut out, "334 ")?;
                        read_line(&mut input)?.unwrap_or_default()
                    } else {
                        initial.to_owned()
                    };
                    let decoded = b64(&response);
                    let mut parts = decoded.split('\0').skip(1);
                    Some((parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned()))
                } else if mechanism.eq_ignore_ascii_case("LOGIN") {
                    reply(&mut out, "334 VXNlcm5hbWU6")?;
                    let user = b64(&read_line(&mut input)?.unwrap_or_default());
                    reply(&mut out, "334 UGFzc3dvcmQ6")?;
                    let pass = b64(&read_line(&mut input)?.unwrap_or_default());
                    Some((user, pass))
                } else {
                    None
                };
                match creds {
                    Some(c) => {
                        shared.state.lock().credentials.push(c);
                        reply(&mut out, "235 2.7.0 authenticated")?;
                    }
                    None => reply(&mut out, "504 5.5.4 mechanism not supported")?,
                }
            }
            "MAIL" => {
                from = Some(address_of(arg));
                rcpt.clear();
                reply(&mut out, "250 2.1.0 OK")?;
            }
            "RCPT" => {
                let to = address_of(arg);
                let refused = shared.state.lock().reject_rcpt.get(&to.to_ascii_lowercase()).copied();
                match (from.is_some(), refused) {
                    (false, _) => reply(&mut out, "503 5.5.1 MAIL first")?,
                    (true, Some(code)) => reply(&mut out, &failure_text(code))?,
                    (true, None) => {
                        rcpt.push(to);
                        reply(&mut out, "250 2.1.5 OK")?;
                    }
                }
            }
            "DATA" => {
                if from.is_none() || rcpt.is_empty() {
                    reply(&mut out, "503 5.5.1 RCPT first")?;
                    continue;
                }
                reply(&mut out, "354 end with <CRLF>.<CRLF>")?;
                let mut data = String::new();
                loop {
                    let Some(l) = read_line(&mut input)? else { return Ok(()) };
                    if l == "." {
                        break;
                    }
                    // The client doubled every leading dot.
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push_str("\r\n");
                }
                let (delay, failure) = {
                    let mut s = shared.state.lock();
                    (s.delay, s.fail_next.pop_front())
                };
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let mail = ReceivedMail {
                    mail_from: from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpt),
                    data,
                };
                match failure {
                    Some(code) => {
                        shared.state.lock().refused.push(mail);
                        shared.changed.notify_all();
                        reply(&mut out, &failure_text(code))?;
                    }
                    None => {
                        // Recorded before the answer: what the client saw accepted is here.
                        shared.state.lock().received.push(mail);
                        shared.changed.notify_all();
                        reply(&mut out, "250 2.0.0 OK queued")?;
                    }
                }
            }
            "RSET" => {
                from = None;
                rcpt.clear();
                reply(&mut out, "250 2.0.0 OK")?;
            }
            "NOOP" => reply(&mut out, "250 2.0.0 OK")?,
            "QUIT" => {
                reply(&mut out, "221 2.0.0 bye")?;
                return Ok(());
            }
            _ => reply(&mut out, "502 5.5.2 command not recognized")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_unfold_and_quoted_printable_decodes() {
        let m = ReceivedMail {
            mail_from: "a@x".into(),
            rcpt_to: vec!["b@y".into()],
            data: "Subject: one\r\n two\r\nMessage-ID: <1@h>\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nlong=\r\n line =3D ok\r\n"
                .into(),
        };
        assert_eq!(m.subject().as_deref(), Some("one two"));
        assert_eq!(m.message_id().as_deref(), Some("<1@h>"));
        assert_eq!(m.body(), "long line = ok\r\n");
        assert_eq!(address_of("FROM:<a@b.c> SIZE=10"), "a@b.c");
    }
}
