//! A minimal HTTP/1.1 client on one keep-alive connection, reconnecting after a failure: the
//! harness must see exactly what the wire shows (a dropped connection is not retried).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// What a request got.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// An HTTP answer.
    Answered {
        status: u16,
        retry_after: bool,
        body: String,
    },
    /// No connection could be made (the server is gone or not accepting).
    Refused,
    /// The connection broke or timed out before a whole answer arrived.
    Dropped(String),
}

impl Outcome {
    /// For reports.
    pub fn describe(&self) -> String {
        match self {
            Self::Answered { status, .. } => status.to_string(),
            Self::Refused => "connection refused".into(),
            Self::Dropped(why) => format!("connection dropped: {why}"),
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One connection to one server.
pub struct Conn {
    port: u16,
    timeout: Duration,
    stream: Option<(BufReader<TcpStream>, TcpStream)>,
}

impl Conn {
    pub fn new(port: u16, timeout: Duration) -> Self {
        Self {
            port,
            timeout,
            stream: None,
        }
    }

    fn connect(&mut self) -> Result<(), Outcome> {
        if self.stream.is_some() {
            return Ok(());
        }
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let writer =
            TcpStream::connect_timeout(&addr, self.timeout).map_err(|_| Outcome::Refused)?;
        let setup = writer
            .set_nodelay(true)
            .and_then(|()| writer.set_read_timeout(Some(self.timeout)))
            .and_then(|()| writer.try_clone());
        match setup {
            Ok(reader) => {
                self.stream = Some((BufReader::new(reader), writer));
                Ok(())
            }
            Err(e) => Err(Outcome::Dropped(e.to_string())),
        }
    }

    /// Sends one request and reads its answer.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Outcome {
        if let Err(outcome) = self.connect() {
            return outcome;
        }
        let result = self.exchange(method, path, headers, body);
        match result {
            Ok((outcome, close)) => {
                if close {
                    self.stream = None;
                }
                outcome
            }
            Err(e) => {
                self.stream = None;
                Outcome::Dropped(e.to_string())
            }
        }
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<(Outcome, bool)> {
        let Some((reader, writer)) = self.stream.as_mut() else {
            return Err(std::io::ErrorKind::NotConnected.into());
        };
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            let _ = write!(request, "{name}: {value}\r\n");
        }
        let _ = write!(
            request,
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        writer.write_all(request.as_bytes())?;
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(std::io::ErrorKind::InvalidData)?;
        let (mut length, mut close, mut retry_after) = (0usize, false, false);
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(v) = header.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            } else if header == "connection: close" {
                close = true;
            } else if header.starts_with("retry-after:") {
                retry_after = true;
            }
        }
        let mut bytes = vec![0; length];
        reader.read_exact(&mut bytes)?;
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Ok((
            Outcome::Answered {
                status,
                retry_after,
                body,
            },
            close,
        ))
    }
}
