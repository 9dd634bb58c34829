//! Opaque keyset cursors: a small JSON position, base64url-encoded. Clients
//! pass them back unchanged; anything else is a 400, never a 500.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError, Location};

/// Longest cursor accepted; real ones are far shorter.
const MAX_CURSOR_LEN: usize = 512;

/// Encodes a position as an opaque cursor.
pub fn encode<T: Serialize>(position: &T) -> String {
    // Serialising a plain struct of numbers and strings cannot fail.
    let json = serde_json::to_vec(position).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The 400 for a cursor this list did not make.
pub fn invalid() -> ApiError {
    ApiError::InvalidParameters(vec![FieldError::new(
        Location::Query,
        "cursor",
        "is not a cursor this list returned; pass `meta.next_cursor` back unchanged",
    )])
}

/// Decodes a cursor made by [`encode`]; a cursor that was not is a 400 naming `cursor`.
pub fn decode<T: DeserializeOwned>(cursor: &str) -> Result<T, ApiError> {
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Position {
        t: i64,
        i: i32,
    }

    #[test]
    fn a_cursor_round_trips() {
        let position = Position {
            t: 1_700_000_000,
            i: 42,
        };
        assert_eq!(decode::<Position>(&encode(&position)).unwrap(), position);
    }

    #[test]
    fn garbage_is_a_bad_parameter() {
        for bad in ["", "!!!", "bm90IGpzb24", &"a".repeat(600)] {
            let error = decode::<Position>(bad).unwrap_err();
            assert!(matches!(error, ApiError::InvalidParameters(_)), "{bad}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn any_text_is_a_position_or_a_400(cursor in any::<String>()) {
                if let Err(error) = decode::<Position>(&cursor) {
                    prop_assert!(matches!(error, ApiError::InvalidParameters(_)));
                }
            }

            #[test]
            fn any_base64_of_any_bytes_is_a_position_or_a_400(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
                let cursor = URL_SAFE_NO_PAD.encode(&bytes);
                if let Err(error) = decode::<Position>(&cursor) {
                    prop_assert!(matches!(error, ApiError::InvalidParameters(_)));
                }
            }

            #[test]
            fn every_position_comes_back_unchanged(t in any::<i64>(), i in any::<i32>()) {
                let position = Position { t, i };
                prop_assert_eq!(decode::<Position>(&encode(&position)).unwrap(), position);
            }
        }
    }
}
