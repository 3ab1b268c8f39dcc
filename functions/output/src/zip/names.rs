//! Entry names a ZIP may hold: none that extracts outside its directory or that
//! extractors would read differently from what was meant.

use super::error::ZipError;

/// The longest name a 2-byte length field can describe.
const MAX_NAME_LEN: usize = 0xFFFF;

/// Refuses names that could write outside the extraction directory (zip-slip) or that
/// extractors would read differently from what was meant.
pub(super) fn validate_name(name: &str) -> Result<(), ZipError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 65,535 bytes, the most a ZIP name can hold")
    } else if name.contains('\0') {
        Some("it contains a NUL byte, where many extractors would cut it short")
    } else if name.starts_with('/') {
        Some("it starts with '/', so extractors would write it outside the target directory")
    } else if name.contains('\\') {
        Some("it contains '\\', which Windows extractors take as a path separator; use '/'")
    } else if name.split('/').any(|segment| segment == "..") {
        Some("it has a '..' segment, which would write outside the target directory")
    } else if has_drive_letter(name) {
        Some("it starts with a drive letter, which Windows extractors take as an absolute path")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(ZipError::BadName {
            name: name.to_owned(),
            reason,
        }),
    }
}

fn has_drive_letter(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "a.txt",
            "dir/",
            "images/2024/1.jpg",
            "é/ü.txt",
            "a/./b",
            "..a/b..",
            "a/..b/...",
            "notes:1.txt",
            "1:x",
            &"n".repeat(MAX_NAME_LEN),
        ] {
            validate_name(name).unwrap();
        }
    }

    #[test]
    fn refuses_names_that_escape_or_mislead() {
        let long = "n".repeat(MAX_NAME_LEN + 1);
        for (name, reason) in [
            ("", "empty"),
            (long.as_str(), "longer than 65,535 bytes"),
            ("a\0b", "NUL"),
            ("/etc/passwd", "starts with '/'"),
            ("a\\b", "contains '\\'"),
            ("..\\x", "contains '\\'"),
            ("..", "'..' segment"),
            ("../x", "'..' segment"),
            ("a/../../x", "'..' segment"),
            ("a/..", "'..' segment"),
            ("a/../", "'..' segment"),
            ("C:/Windows/x", "drive letter"),
            ("c:x", "drive letter"),
        ] {
            match validate_name(name) {
                Err(ZipError::BadName {
                    name: got,
                    reason: why,
                }) => {
                    assert_eq!(got, name);
                    assert!(why.contains(reason), "{name:?}: {why}");
                }
                other => panic!("{name:?} was not refused: {other:?}"),
            }
        }
        let message = validate_name("../x").unwrap_err().to_string();
        assert_eq!(
            message,
            "entry name \"../x\" cannot go into a ZIP: it has a '..' segment, which would \
             write outside the target directory"
        );
        // A 64 KiB name is cut short in the message.
        let message = validate_name(&long).unwrap_err().to_string();
        assert!(message.len() < 400, "{}", message.len());
        assert!(message.contains("(65536 bytes)"), "{message}");
    }
}
