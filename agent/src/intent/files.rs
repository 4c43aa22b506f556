//! Intent stage: the files a config writes, decoded from their RFC 2397 data URLs
//! (percent-encoded or base64, optionally gzip-compressed).
//!
//! Only files that can declare routes are decoded; the rest (pull secret
//! included) are never read past their path.

use std::collections::BTreeMap;
use std::io::Read;

use super::document::{File, Resource};

/// Ignition's mode for a file that names none.
pub const DEFAULT_MODE: u32 = 0o644;

/// Decompressed files larger than this are refused (a gzip bomb stays small).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A decoded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFile {
    /// Absolute path on the node.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Text (invalid UTF-8 replaced).
    pub text: String,
}

/// Why a file's contents could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not a data URL (an http, s3, tftp... source the agent cannot fetch).
    #[error("contents source is not a data URL; remote sources are not fetched")]
    Remote,
    /// A malformed data URL or bad base64.
    #[error("contents source is not a valid data URL: {0}")]
    DataUrl(&'static str),
    /// Bad gzip data.
    #[error("contents are not valid gzip data")]
    Gzip,
    /// A compression Ignition does not know.
    #[error("unknown compression (Ignition knows gzip)")]
    Compression,
    /// Larger than the limit once decompressed.
    #[error("contents are larger than {} MiB", MAX_FILE_BYTES / 1024 / 1024)]
    TooLarge,
}

impl DecodeError {
    /// Fixed label.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Remote => "remote-source",
            DecodeError::DataUrl(_) => "data-url",
            DecodeError::Gzip => "gzip",
            DecodeError::Compression => "compression",
            DecodeError::TooLarge => "too-large",
        }
    }
}

/// Decode a file's contents plus its `append` fragments.
pub fn decode(file: &File) -> Result<NodeFile, DecodeError> {
    let mut bytes = match &file.contents {
        Some(r) => decode_resource(r)?,
        None => Vec::new(),
    };
    for fragment in file.append.iter().flatten() {
        bytes.extend(decode_resource(fragment)?);
    }
    Ok(NodeFile {
        path: file.path.clone(),
        mode: file.mode.unwrap_or(DEFAULT_MODE),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

fn decode_resource(r: &Resource) -> Result<Vec<u8>, DecodeError> {
    let Some(source) = r.source.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    let raw = decode_data_url(source)?;
    match r.compression.as_deref().unwrap_or("") {
        "" => Ok(raw),
        "gzip" => gunzip(&raw),
        _ => Err(DecodeError::Compression),
    }
}

fn decode_data_url(source: &str) -> Result<Vec<u8>, DecodeError> {
    let scheme = source.split(':').next().unwrap_or("");
    if !scheme.eq_ignore_ascii_case("data") {
        return Err(DecodeError::Remote);
    }
    let url = data_url::DataUrl::process(source).map_err(|_| DecodeError::DataUrl("malformed"))?;
    let (bytes, _) = url
        .decode_to_vec()
        .map_err(|_| DecodeError::DataUrl("invalid base64"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(DecodeError::TooLarge);
    }
    Ok(bytes)
}

fn gunzip(raw: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let mut reader = flate2::read::GzDecoder::new(raw).take(MAX_FILE_BYTES + 1);
    reader.read_to_end(&mut out).map_err(|_| DecodeError::Gzip)?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(DecodeError::TooLarge);
    }
    Ok(out)
}

/// The files of a merged config by path: later configs replace earlier ones.
pub type FileMap = BTreeMap<String, File>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(source: &str, compression: Option<&str>) -> File {
        File {
            path: "/etc/x".into(),
            contents: Some(Resource {
                source: Some(source.into()),
                compression: compression.map(Into::into),
            }),
            ..File::default()
        }
    }

    #[test]
    fn percent_encoded_and_base64() {
        let f = decode(&file("data:,a%20b%0A", None)).expect("decodes");
        assert_eq!(f.text, "a b\n");
        assert_eq!(f.mode, DEFAULT_MODE);
        let f = decode(&file("data:text/plain;charset=utf-8;base64,aGk=", None)).expect("decodes");
        assert_eq!(f.text, "hi");
    }

    #[test]
    fn gzip_and_append() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"route1=10.0.0.0/8\n").expect("write");
        let raw = gz.finish().expect("finish");
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let mut f = file(&format!("data:;base64,{b64}"), Some("gzip"));
        f.append = Some(vec![Resource {
            source: Some("data:,tail".into()),
            compression: None,
        }]);
        assert_eq!(decode(&f).expect("decodes").text, "route1=10.0.0.0/8\ntail");
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(
            decode(&file("data:;base64,!!!", None)).map_err(|e| e.kind()),
            Err("data-url")
        );
        assert_eq!(
            decode(&file("data:,abc", Some("gzip"))).map_err(|e| e.kind()),
            Err("gzip")
        );
        assert_eq!(
            decode(&file("data:,abc", Some("xz"))).map_err(|e| e.kind()),
            Err("compression")
        );
        assert_eq!(
            decode(&file("https://x/y", None)).map_err(|e| e.kind()),
            Err("remote-source")
        );
    }

    #[test]
    fn gzip_bomb_is_bounded() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..17 {
            gz.write_all(&zeros).expect("write");
        }
        let raw = gz.finish().expect("finish");
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let f = file(&format!("data:;base64,{b64}"), Some("gzip"));
        assert_eq!(decode(&f).map_err(|e| e.kind()), Err("too-large"));
    }
}
