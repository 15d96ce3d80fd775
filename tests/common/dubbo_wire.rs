//! Hand-written Dubbo 2 frames for tests that must control every byte
//! (heartbeats, status codes, malformed input). Built from the wire spec,
//! independently of the codec under test.
#![allow(dead_code)]

/// Hessian2 string (short and medium forms; enough for test values).
pub fn hstr(s: &str) -> Vec<u8> {
    let units: usize = s.chars().map(|c| c.len_utf16()).sum();
    let mut out = Vec::new();
    if units < 32 {
        out.push(units as u8);
    } else if units < 1024 {
        out.push(0x30 + (units >> 8) as u8);
        out.push((units & 0xff) as u8);
    } else {
        out.push(b'S');
        out.extend_from_slice(&(units as u16).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
    out
}

/// A 16-byte Dubbo header.
pub fn header(flags: u8, status: u8, id: u64, body_len: i32) -> Vec<u8> {
    let mut h = vec![0xda, 0xbb, flags, status];
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&body_len.to_be_bytes());
    h
}

/// A two-way hessian2 request calling `interface.method(arg)` with attachments.
pub fn request(
    id: u64,
    interface: &str,
    method: &str,
    arg: &str,
    attachments: &[(&str, &str)],
) -> Vec<u8> {
    let mut body = Vec::new();
    for s in [
        "2.0.2",
        interface,
        "1.0.0",
        method,
        "Ljava/lang/String;",
        arg,
    ] {
        body.extend(hstr(s));
    }
    body.push(b'H');
    for (k, v) in attachments {
        body.extend(hstr(k));
        body.extend(hstr(v));
    }
    body.push(b'Z');
    let mut frame = header(0xc2, 0, id, body.len() as i32);
    frame.extend(body);
    frame
}

/// A heartbeat request.
pub fn heartbeat(id: u64) -> Vec<u8> {
    let mut f = header(0xe2, 0, id, 1);
    f.push(b'N');
    f
}

/// An OK response carrying a string value (response flag 1).
pub fn string_response(id: u64, value: &str) -> Vec<u8> {
    let mut body = vec![0x91];
    body.extend(hstr(value));
    let mut f = header(0x02, 20, id, body.len() as i32);
    f.extend(body);
    f
}

/// A parsed response header and body.
#[derive(Debug)]
pub struct Frame {
    pub flags: u8,
    pub status: u8,
    pub id: u64,
    pub body: Vec<u8>,
}

impl Frame {
    /// The body read as one short/medium/'S' hessian string (error messages).
    pub fn body_string(&self) -> String {
        let b = &self.body;
        let start = match b.first() {
            Some(0..=0x1f) => 1,
            Some(0x30..=0x33) => 2,
            Some(b'S') => 3,
            _ => return String::from_utf8_lossy(b).into_owned(),
        };
        String::from_utf8_lossy(&b[start.min(b.len())..]).into_owned()
    }
}

/// Reads one frame from a blocking stream; None on EOF or error.
pub fn read_frame(stream: &mut impl std::io::Read) -> Option<Frame> {
    let mut h = [0u8; 16];
    stream.read_exact(&mut h).ok()?;
    assert_eq!(&h[..2], &[0xda, 0xbb], "bad magic from the proxy");
    let len = i32::from_be_bytes(h[12..16].try_into().unwrap());
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).ok()?;
    Some(Frame {
        flags: h[2],
        status: h[3],
        id: u64::from_be_bytes(h[4..12].try_into().unwrap()),
        body,
    })
}
