//! A webhook receiver on a loopback port, in the harness's own minimal HTTP (as its client):
//! it records every delivery's `webhook-id` and the message it carries, answers 204, and can
//! be taken down (its port refuses connections, open connections are dropped) and brought
//! back on the same port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub id: String,
    pub event: i64,
    pub seq: i64,
    pub at: Instant,
}

pub struct Receiver {
    pub port: u16,
    got: Arc<Mutex<Vec<Receipt>>>,
    up: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Result<Self, String> {
        Self::start_on(0)
    }

    /// A receiver on loopback port `port` (0: any free one).
    pub fn start_on(port: u16) -> Result<Self, String> {
        let listener =
            TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("receiver: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let mut receiver = Self {
            port,
            got: Arc::default(),
            up: Arc::new(AtomicBool::new(true)),
            accept: None,
        };
        receiver.serve(listener);
        Ok(receiver)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    fn serve(&mut self, listener: TcpListener) {
        let (got, up) = (Arc::clone(&self.got), Arc::clone(&self.up));
        self.accept = Some(std::thread::spawn(move || {
            for stream in listener.incoming() {
                if !up.load(Ordering::Acquire) {
                    return;
                }
                if let Ok(stream) = stream {
                    let (got, up) = (Arc::clone(&got), Arc::clone(&up));
                    std::thread::spawn(move || connection(stream, &got, &up));
                }
            }
        }));
    }

    /// Closes the port: connections are refused until [`Receiver::resume`].
    pub fn stop(&mut self) {
        self.up.store(false, Ordering::Release);
        // Wakes the accept loop so it sees the flag and drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }

    /// Listens again on the same port.
    pub fn resume(&mut self) -> Result<(), String> {
        let listener =
            TcpListener::bind(("127.0.0.1", self.port)).map_err(|e| format!("receiver: {e}"))?;
        self.up.store(true, Ordering::Release);
        self.serve(listener);
        Ok(())
    }

    pub fn receipts(&self) -> Vec<Receipt> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn connection(stream: TcpStream, got: &Mutex<Vec<Receipt>>, up: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut id) = (0usize, String::new());
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            } else if lower.starts_with("webhook-id:") {
                header["webhook-id:".len()..].trim().clone_into(&mut id);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        // Down: the request is dropped unanswered, as by a receiver that died.
        if !up.load(Ordering::Acquire) {
            return;
        }
        let message: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Ok(mut got) = got.lock() {
            got.push(Receipt {
                id,
                event: message["event_id"].as_i64().unwrap_or(0),
                seq: message["seq"].as_i64().unwrap_or(0),
                at: Instant::now(),
            });
        }
        if writer
            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}
