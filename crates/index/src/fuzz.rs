//! Body of the fuzz target over the query cursor, as a plain function: `fuzz/` runs it
//! under libFuzzer (`cargo +nightly fuzz run cursor`), and `tests/it/index_fuzz.rs` runs it
//! on stable over a seeded corpus and a few thousand mutated inputs. It takes arbitrary
//! bytes and panics only on a bug.

use crate::{Cursor, Order, QueryError};

/// [`Cursor::decode`] on `data` (as text, when it is UTF-8), and the round trip of a
/// cursor built from `data`'s first nine bytes.
///
/// Properties: no panic; a refusal is a 400 (`QueryError::Invalid`) that names the
/// cursor; an accepted cursor has a seq the index can compare (at most `i64::MAX`: SQLite
/// integers are signed) and is the one encoding of itself, so no two strings name the
/// same position; and every cursor the server hands out decodes to itself.
pub fn cursor(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        match Cursor::decode(text) {
            Ok(c) => {
                assert!(
                    i64::try_from(c.seq).is_ok(),
                    "cursor {text:?} decodes to seq {}, past what SQLite compares",
                    c.seq
                );
                assert_eq!(c.encode(), text, "a cursor has one encoding");
            }
            Err(QueryError::Invalid(message)) => assert!(message.contains("cursor")),
            Err(e) => panic!("decoding a cursor failed with {e:?}, not a 400"),
        }
    }
    if let Some((&order, seq)) = data.split_first() {
        if let Ok(seq) = <[u8; 8]>::try_from(seq.get(..8).unwrap_or_default()) {
            let c = Cursor {
                seq: u64::from_be_bytes(seq) >> 1,
                order: if order & 1 == 0 {
                    Order::Asc
                } else {
                    Order::Desc
                },
            };
            assert_eq!(Cursor::decode(&c.encode()).expect("ours"), c);
        }
    }
}
