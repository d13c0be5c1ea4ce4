//! Event-stream framing: AWS's published vectors (aws-c-event-stream, under
//! `tests/fixtures/event_stream/`), corruption, and splits at every byte.

use super::*;

const EMPTY: &[u8] = include_bytes!("../../../tests/fixtures/event_stream/empty.bin");
const NO_HEADERS: &[u8] =
    include_bytes!("../../../tests/fixtures/event_stream/payload_no_headers.bin");
const ONE_HEADER: &[u8] = include_bytes!("../../../tests/fixtures/event_stream/one_header.bin");

fn decode_all(bytes: &[u8]) -> Result<Vec<EventMessage>, EventStreamError> {
    let mut decoder = EventStreamDecoder::new();
    let messages = decoder.push(bytes)?;
    decoder.finish()?;
    Ok(messages)
}

fn s(name: &str, value: &str) -> (String, HeaderValue) {
    (name.to_owned(), HeaderValue::String(value.to_owned()))
}

#[test]
fn published_vectors_decode() {
    let empty = decode_all(EMPTY).unwrap();
    assert_eq!(
        empty,
        vec![EventMessage {
            headers: vec![],
            payload: Bytes::new()
        }]
    );

    let plain = decode_all(NO_HEADERS).unwrap();
    assert_eq!(plain.len(), 1);
    assert!(plain[0].headers.is_empty());
    assert_eq!(&plain[0].payload[..], b"{'foo':'bar'}");

    let one = decode_all(ONE_HEADER).unwrap();
    assert_eq!(one[0].headers, vec![s("content-type", "application/json")]);
    assert_eq!(one[0].header_str("content-type"), Some("application/json"));
    assert_eq!(&one[0].payload[..], b"{'foo':'bar'}");
}

#[test]
fn encoder_reproduces_published_vectors() {
    assert_eq!(encode_message(&[], b""), EMPTY);
    assert_eq!(encode_message(&[], b"{'foo':'bar'}"), NO_HEADERS);
    assert_eq!(
        encode_message(&[s("content-type", "application/json")], b"{'foo':'bar'}"),
        ONE_HEADER
    );
}

/// Every value type, in the order of aws-sdk-go's `all_headers` vector,
/// whose published lengths and prelude CRC the encoding must match. (Its
/// published message CRC is not reproduced from its decoded description,
/// so the bytes themselves are only checked by round trip.)
fn all_headers() -> Vec<(String, HeaderValue)> {
    vec![
        ("event-type".into(), HeaderValue::Int(40972)),
        s("content-type", "application/json"),
        ("bool false".into(), HeaderValue::Bool(false)),
        ("bool true".into(), HeaderValue::Bool(true)),
        ("byte".into(), HeaderValue::Byte(-49)), // 0xCF
        (
            "byte buf".into(),
            HeaderValue::Bytes(Bytes::from_static(b"I'm a little teapot!")),
        ),
        ("timestamp".into(), HeaderValue::Timestamp(8_675_309)),
        ("int16".into(), HeaderValue::Short(42)),
        ("int64".into(), HeaderValue::Long(42_424_242)),
        (
            "uuid".into(),
            HeaderValue::Uuid(std::array::from_fn(|i| i as u8)),
        ),
    ]
}

#[test]
fn all_header_types_round_trip() {
    let frame = encode_message(&all_headers(), b"{'foo':'bar'}");
    assert_eq!(frame.len(), 204);
    assert_eq!(be_u32(&frame[4..8]), 175);
    assert_eq!(be_u32(&frame[8..12]), 263_087_306);
    let decoded = decode_all(&frame).unwrap();
    assert_eq!(decoded[0].headers, all_headers());
    assert_eq!(&decoded[0].payload[..], b"{'foo':'bar'}");
    // Extremes of each numeric type survive too.
    let extremes = vec![
        ("a".into(), HeaderValue::Byte(i8::MIN)),
        ("b".into(), HeaderValue::Short(i16::MIN)),
        ("c".into(), HeaderValue::Int(i32::MAX)),
        ("d".into(), HeaderValue::Long(i64::MIN)),
        ("e".into(), HeaderValue::Timestamp(-1)),
        ("f".into(), HeaderValue::Bytes(Bytes::new())),
        s("g", ""),
    ];
    let decoded = decode_all(&encode_message(&extremes, b"")).unwrap();
    assert_eq!(decoded[0].headers, extremes);
}

fn three_messages() -> (Vec<u8>, Vec<EventMessage>) {
    let messages = vec![
        EventMessage {
            headers: vec![
                s(":message-type", "event"),
                s(":event-type", "chunk"),
                s(":content-type", "application/json"),
            ],
            payload: Bytes::from_static(br#"{"bytes":"eyJ0eXBlIjoibWVzc2FnZV9zdGFydCJ9"}"#),
        },
        EventMessage {
            headers: vec![
                s(":message-type", "exception"),
                s(":exception-type", "throttlingException"),
            ],
            payload: Bytes::from_static(br#"{"message":"Too many requests"}"#),
        },
        EventMessage {
            headers: vec![
                s(":message-type", "error"),
                s(":error-code", "InternalFailure"),
                s(":error-message", "boom"),
            ],
            payload: Bytes::new(),
        },
    ];
    let mut stream = Vec::new();
    for m in &messages {
        stream.extend(encode_message(&m.headers, &m.payload));
    }
    (stream, messages)
}

#[test]
fn split_at_every_byte_boundary() {
    let (stream, expected) = three_messages();
    assert_eq!(decode_all(&stream).unwrap(), expected);
    for cut in 0..=stream.len() {
        let mut decoder = EventStreamDecoder::new();
        let mut got = decoder.push(&stream[..cut]).unwrap();
        got.extend(decoder.push(&stream[cut..]).unwrap());
        decoder.finish().unwrap();
        assert_eq!(got, expected, "split at {cut}");
    }
    // And one byte at a time.
    let mut decoder = EventStreamDecoder::new();
    let mut got = Vec::new();
    for byte in &stream {
        got.extend(decoder.push(std::slice::from_ref(byte)).unwrap());
    }
    decoder.finish().unwrap();
    assert_eq!(got, expected);
}

#[test]
fn message_kinds() {
    let (_, messages) = three_messages();
    assert_eq!(messages[0].kind(), MessageKind::Event("chunk"));
    assert_eq!(messages[0].event_type(), Some("chunk"));
    assert_eq!(
        messages[1].kind(),
        MessageKind::Exception("throttlingException")
    );
    assert_eq!(messages[1].exception_type(), Some("throttlingException"));
    assert_eq!(
        messages[2].kind(),
        MessageKind::Error {
            code: "InternalFailure",
            message: "boom"
        }
    );
    let bare = EventMessage {
        headers: vec![],
        payload: Bytes::new(),
    };
    assert_eq!(bare.kind(), MessageKind::Unknown);
    assert_eq!(bare.message_type(), None);
}

#[test]
fn corrupted_prelude_crc_is_rejected() {
    let mut frame = ONE_HEADER.to_vec();
    frame[9] ^= 0x01;
    let err = decode_all(&frame).unwrap_err();
    assert!(
        matches!(
            err,
            EventStreamError::PreludeCrc {
                expected: 0x07FC_8396,
                ..
            }
        ),
        "{err:?}"
    );
    // A corrupted length is caught by the prelude CRC, before it is trusted.
    let mut frame = ONE_HEADER.to_vec();
    frame[3] = 0xFF;
    assert!(matches!(
        decode_all(&frame),
        Err(EventStreamError::PreludeCrc { .. })
    ));
}

#[test]
fn corrupted_message_crc_is_rejected() {
    for at in [20, ONE_HEADER.len() - 1] {
        let mut frame = ONE_HEADER.to_vec();
        frame[at] ^= 0x20;
        let err = decode_all(&frame).unwrap_err();
        assert!(
            matches!(err, EventStreamError::MessageCrc { .. }),
            "{err:?}"
        );
    }
}

/// A prelude with a valid CRC over the given lengths.
fn prelude(total: u32, headers: u32) -> Vec<u8> {
    let mut p = total.to_be_bytes().to_vec();
    p.extend(headers.to_be_bytes());
    let crc = crc32fast::hash(&p);
    p.extend(crc.to_be_bytes());
    p
}

#[test]
fn absurd_lengths_are_rejected() {
    let err = EventStreamDecoder::new()
        .push(&prelude(17 * 1024 * 1024, 0))
        .unwrap_err();
    assert_eq!(err, EventStreamError::TooLarge(17 * 1024 * 1024));
    let err = EventStreamDecoder::new().push(&prelude(8, 0)).unwrap_err();
    assert_eq!(
        err,
        EventStreamError::BadLengths {
            total: 8,
            headers: 0
        }
    );
    let err = EventStreamDecoder::new().push(&prelude(20, 5)).unwrap_err();
    assert_eq!(
        err,
        EventStreamError::BadLengths {
            total: 20,
            headers: 5
        }
    );
}

#[test]
fn malformed_headers_are_rejected() {
    // A header whose string value claims more bytes than the headers hold.
    let headers = [1, b'x', 7, 0, 9, b'a'];
    let mut frame = prelude((16 + headers.len()) as u32, headers.len() as u32);
    frame.extend(headers);
    let crc = crc32fast::hash(&frame);
    frame.extend(crc.to_be_bytes());
    assert!(matches!(
        decode_all(&frame),
        Err(EventStreamError::BadHeader(_))
    ));
    // An unknown value type.
    let headers = [1, b'x', 10];
    let mut frame = prelude((16 + headers.len()) as u32, headers.len() as u32);
    frame.extend(headers);
    let crc = crc32fast::hash(&frame);
    frame.extend(crc.to_be_bytes());
    assert!(matches!(
        decode_all(&frame),
        Err(EventStreamError::BadHeader(_))
    ));
}

#[test]
fn truncated_stream_fails_finish_and_errors_stick() {
    let mut decoder = EventStreamDecoder::new();
    assert_eq!(decoder.push(&ONE_HEADER[..30]).unwrap(), vec![]);
    assert_eq!(decoder.finish(), Err(EventStreamError::Truncated(30)));
    assert_eq!(decoder.push(&ONE_HEADER[30..]).unwrap().len(), 1);
    assert_eq!(decoder.finish(), Ok(()));

    let mut bad = ONE_HEADER.to_vec();
    bad[9] ^= 1;
    assert!(decoder.push(&bad).is_err());
    assert_eq!(decoder.push(EMPTY), Err(EventStreamError::Failed));
}

#[test]
fn over_long_values_are_cut_on_a_char_boundary() {
    let long = "é".repeat(40_000); // 80_000 bytes
    let frame = encode_message(&[("k".repeat(300), HeaderValue::String(long))], b"");
    let decoded = decode_all(&frame).unwrap();
    let (name, value) = &decoded[0].headers[0];
    assert_eq!(name.len(), 255);
    let HeaderValue::String(value) = value else {
        panic!("not a string")
    };
    assert_eq!(value.len(), 65_534);
}
