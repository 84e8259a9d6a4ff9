//! What the HTTP benches share: one HTTP/1.1 response read off a kept-alive connection.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;

/// Read one response (headers, then a `Content-Length` body) and return its status.
pub fn read_response(r: &mut BufReader<TcpStream>) -> u16 {
    let (mut status, mut len) = (0u16, 0usize);
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(rest) = line.strip_prefix("HTTP/1.1 ") {
            status = rest[..3].parse().unwrap();
        } else if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    status
}
