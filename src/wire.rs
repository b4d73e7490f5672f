//! The sandbox's PDU, the same for TCP and UDP: a 2-byte big-endian payload length, a 2-byte
//! big-endian message type (1 TEXT, 2 JSON), then the UTF-8 payload.

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes before the payload: length and type.
pub const HEADER_LEN: usize = 4;
/// The largest payload the 2-byte length field can describe.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;
/// The size the sandbox pads every UDP datagram to, with zero bytes (so a datagram leaves as
/// three IP fragments on a 1500-byte MTU).
pub const DATAGRAM_LEN: usize = 4096;

/// A message's type: the 2-byte field after the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Type 1: text.
    Text,
    /// Type 2: JSON.
    Json,
}

impl MessageType {
    /// The type's code on the wire.
    pub fn code(self) -> u16 {
        match self {
            MessageType::Text => 1,
            MessageType::Json => 2,
        }
    }

    /// The type with code `code`.
    pub fn from_code(code: u16) -> Result<Self, WireError> {
        match code {
            1 => Ok(MessageType::Text),
            2 => Ok(MessageType::Json),
            other => Err(WireError::UnknownType(other)),
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageType::Text => "TEXT",
            MessageType::Json => "JSON",
        })
    }
}

/// One message of the sandbox's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its type.
    pub kind: MessageType,
    /// Its payload.
    pub payload: String,
}

/// Why a message could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("truncated frame: expected {expected} bytes, the stream ended after {got}")]
    /// The stream ended inside a message.
    Truncated {
        /// Bytes the message needed.
        expected: usize,
        /// Bytes there were.
        got: usize,
    },
    /// A type code other than 1 and 2.
    #[error("unknown message type {0}: expected 1 (TEXT) or 2 (JSON)")]
    UnknownType(u16),
    #[error("payload is not valid UTF-8 (first bad byte at offset {valid_up_to})")]
    /// A payload that is not UTF-8.
    InvalidUtf8 {
        /// Bytes before the first invalid one.
        valid_up_to: usize,
    },
    /// A payload over [`MAX_PAYLOAD`] bytes.
    #[error("payload of {0} bytes is over the protocol's limit of 65535 bytes")]
    TooLarge(usize),
    /// Reading or writing the stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl Message {
    /// A text message.
    pub fn text(payload: impl Into<String>) -> Self {
        Message {
            kind: MessageType::Text,
            payload: payload.into(),
        }
    }

    /// A JSON message (the payload is not checked).
    pub fn json(payload: impl Into<String>) -> Self {
        Message {
            kind: MessageType::Json,
            payload: payload.into(),
        }
    }

    /// The frame's bytes; fails only for a payload over [`MAX_PAYLOAD`].
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let payload = self.payload.as_bytes();
        let len = u16::try_from(payload.len()).map_err(|_| WireError::TooLarge(payload.len()))?;
        let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&self.kind.code().to_be_bytes());
        frame.extend_from_slice(payload);
        Ok(frame)
    }

    /// The frame as a UDP datagram: padded with zero bytes to [`DATAGRAM_LEN`]; a longer frame
    /// goes as it is, as the sandbox sends it.
    pub fn encode_datagram(&self) -> Result<Vec<u8>, WireError> {
        let mut frame = self.encode()?;
        if frame.len() < DATAGRAM_LEN {
            frame.resize(DATAGRAM_LEN, 0);
        }
        Ok(frame)
    }

    /// Decodes a UDP datagram: one frame, then padding that is ignored.
    pub fn decode_datagram(datagram: &[u8]) -> Result<Message, WireError> {
        Message::decode(datagram).map(|(message, _)| message)
    }

    /// Decodes the frame at the start of `buf`; returns the message and the bytes it used.
    pub fn decode(buf: &[u8]) -> Result<(Message, usize), WireError> {
        if buf.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                expected: HEADER_LEN,
                got: buf.len(),
            });
        }
        let len = u16::from_be_bytes([buf[0], buf[1]]) as usize;
        let kind = MessageType::from_code(u16::from_be_bytes([buf[2], buf[3]]))?;
        let end = HEADER_LEN + len;
        if buf.len() < end {
            return Err(WireError::Truncated {
                expected: end,
                got: buf.len(),
            });
        }
        let payload = payload_string(buf[HEADER_LEN..end].to_vec())?;
        Ok((Message { kind, payload }, end))
    }
}

fn payload_string(bytes: Vec<u8>) -> Result<String, WireError> {
    String::from_utf8(bytes).map_err(|e| WireError::InvalidUtf8 {
        valid_up_to: e.utf8_error().valid_up_to(),
    })
}

/// Reads one message. `Ok(None)` means the peer closed the stream cleanly between frames.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Message>, WireError> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(r, &mut header).await?;
    if got == 0 {
        return Ok(None);
    }
    if got < HEADER_LEN {
        return Err(WireError::Truncated {
            expected: HEADER_LEN,
            got,
        });
    }
    let len = u16::from_be_bytes([header[0], header[1]]) as usize;
    let kind = MessageType::from_code(u16::from_be_bytes([header[2], header[3]]))?;
    let mut payload = vec![0u8; len];
    let got = read_full(r, &mut payload).await?;
    if got < len {
        return Err(WireError::Truncated {
            expected: HEADER_LEN + len,
            got: HEADER_LEN + got,
        });
    }
    Ok(Some(Message {
        kind,
        payload: payload_string(payload)?,
    }))
}

/// Writes one message as a single frame.
pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    message: &Message,
) -> Result<(), WireError> {
    w.write_all(&message.encode()?).await?;
    w.flush().await?;
    Ok(())
}

/// Like `read_exact`, but reports how much arrived before EOF instead of failing.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_frame_layout() {
        let frame = Message::text("hi").encode().unwrap();
        assert_eq!(frame, [0, 2, 0, 1, b'h', b'i']);
    }

    #[test]
    fn datagrams_are_padded_to_4096_bytes_and_the_padding_is_ignored() {
        let d = Message::text(r#""hi""#).encode_datagram().unwrap();
        assert_eq!(d.len(), DATAGRAM_LEN);
        assert_eq!(&d[..8], &[0, 4, 0, 1, b'"', b'h', b'i', b'"']);
        assert!(d[8..].iter().all(|b| *b == 0));
        assert_eq!(
            Message::decode_datagram(&d).unwrap(),
            Message::text(r#""hi""#)
        );
        // A frame longer than the padding goes as it is.
        let long = "x".repeat(5000);
        assert_eq!(
            Message::text(long.clone()).encode_datagram().unwrap().len(),
            HEADER_LEN + 5000
        );
        // A datagram shorter than its header says is refused, not read past.
        assert!(matches!(
            Message::decode_datagram(&[0, 9, 0, 1, b'a']),
            Err(WireError::Truncated { .. })
        ));
        assert!(Message::decode_datagram(&[]).is_err());
    }

    #[test]
    fn json_round_trip() {
        let msg = Message::json(r#"{"numbers":[1,2,3]}"#);
        let frame = msg.encode().unwrap();
        assert_eq!(&frame[2..4], &[0, 2]);
        assert_eq!(Message::decode(&frame).unwrap(), (msg, frame.len()));
    }

    #[test]
    fn empty_and_maximal_payloads() {
        let empty = Message::text("");
        assert_eq!(Message::decode(&empty.encode().unwrap()).unwrap().0, empty);
        let max = Message::text("x".repeat(MAX_PAYLOAD));
        let frame = max.encode().unwrap();
        assert_eq!(frame.len(), HEADER_LEN + MAX_PAYLOAD);
        assert_eq!(Message::decode(&frame).unwrap().0, max);
    }

    #[test]
    fn payload_over_limit_is_refused() {
        let err = Message::text("x".repeat(MAX_PAYLOAD + 1))
            .encode()
            .unwrap_err();
        assert!(matches!(err, WireError::TooLarge(65536)), "{err}");
    }

    #[test]
    fn decode_leaves_following_bytes() {
        let mut buf = Message::text("a").encode().unwrap();
        buf.extend_from_slice(&Message::text("b").encode().unwrap());
        let (first, used) = Message::decode(&buf).unwrap();
        assert_eq!(first.payload, "a");
        assert_eq!(Message::decode(&buf[used..]).unwrap().0.payload, "b");
    }

    #[test]
    fn truncated_header_and_payload() {
        assert!(matches!(
            Message::decode(&[0, 5, 0]),
            Err(WireError::Truncated {
                expected: 4,
                got: 3
            })
        ));
        assert!(matches!(
            Message::decode(&[0, 5, 0, 1, b'a', b'b']),
            Err(WireError::Truncated {
                expected: 9,
                got: 6
            })
        ));
    }

    #[test]
    fn unknown_type() {
        let err = Message::decode(&[0, 1, 0, 7, b'a']).unwrap_err();
        assert!(matches!(err, WireError::UnknownType(7)));
        assert!(err.to_string().contains("expected 1 (TEXT) or 2 (JSON)"));
    }

    #[test]
    fn invalid_utf8() {
        let err = Message::decode(&[0, 3, 0, 1, b'o', 0xff, b'k']).unwrap_err();
        assert!(matches!(err, WireError::InvalidUtf8 { valid_up_to: 1 }));
    }

    #[tokio::test]
    async fn stream_read_write_and_clean_eof() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            write_message(&mut a, &Message::text("Message #1 from client Alice"))
                .await
                .unwrap();
            write_message(&mut a, &Message::json("{}")).await.unwrap();
        });
        let first = read_message(&mut b).await.unwrap().unwrap();
        assert_eq!(first, Message::text("Message #1 from client Alice"));
        assert_eq!(
            read_message(&mut b).await.unwrap().unwrap().kind,
            MessageType::Json
        );
        writer.await.unwrap();
        assert!(read_message(&mut b).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn stream_truncated_mid_payload() {
        let bytes: &[u8] = &[0, 10, 0, 1, b'a', b'b'];
        let mut reader = bytes;
        let err = read_message(&mut reader).await.unwrap_err();
        assert!(matches!(
            err,
            WireError::Truncated {
                expected: 14,
                got: 6
            }
        ));
    }

    #[tokio::test]
    async fn stream_truncated_mid_header() {
        let mut reader: &[u8] = &[0, 10];
        assert!(matches!(
            read_message(&mut reader).await,
            Err(WireError::Truncated {
                expected: 4,
                got: 2
            })
        ));
    }
}
