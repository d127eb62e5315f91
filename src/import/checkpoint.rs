//! The checkpoint: how far into the input the ledger has committed, so a rerun continues there.
//! It is written only after the batch it covers committed, and replaced atomically (write a
//! temporary file, fsync, rename). A rerun also checks that the bytes before that point are the
//! ones that were imported: a file edited since is refused rather than silently skipped.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::rows::Position;
use super::summary::Counts;

const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub version: u32,
    /// `csv` or `ndjson`.
    pub format: String,
    /// Byte offset where the first row not yet committed starts.
    pub offset: u64,
    /// The line that row starts on.
    pub line: u64,
    /// SHA-256 of the input's first `offset` bytes.
    pub prefix_sha256: String,
    /// Length of the reject file when this was written (a rerun cuts off anything after it).
    pub rejects_len: u64,
    /// What every run so far made of the rows before `offset`.
    pub totals: Counts,
}

impl Checkpoint {
    pub fn new(format: &str, at: Position, prefix_sha256: String, rejects_len: u64, totals: Counts) -> Self {
        Self {
            version: VERSION,
            format: format.to_owned(),
            offset: at.offset,
            line: at.line,
            prefix_sha256,
            rejects_len,
            totals,
        }
    }

    pub fn position(&self) -> Position {
        Position { offset: self.offset, line: self.line }
    }

    /// The checkpoint at `path`, if there is one.
    pub fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => anyhow::bail!("cannot read the checkpoint {}: {e}", path.display()),
        };
        let cp: Self = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!("the checkpoint {} is unreadable ({e}); rerun with --restart", path.display())
        })?;
        if cp.version != VERSION {
            anyhow::bail!("the checkpoint {} has version {}; rerun with --restart", path.display(), cp.version);
        }
        Ok(Some(cp))
    }

    /// Replaces the checkpoint at `path` durably and atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let mut f = File::create(&tmp)?;
        let mut text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    }
}

/// SHA-256 of a growing prefix of the input, read through its own handle.
pub(crate) struct PrefixHash {
    file: File,
    hasher: Sha256,
    at: u64,
    buf: Vec<u8>,
}

impl PrefixHash {
    pub fn new(file: File) -> Self {
        Self { file, hasher: Sha256::new(), at: 0, buf: vec![0; 1 << 16] }
    }

    /// Hashes the bytes up to `to`.
    pub fn advance(&mut self, to: u64) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(self.at))?;
        while self.at < to {
            let want = ((to - self.at) as usize).min(self.buf.len());
            let n = self.file.read(&mut self.buf[..want])?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the input got shorter"));
            }
            self.hasher.update(&self.buf[..n]);
            self.at += n as u64;
        }
        Ok(())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_checkpoints_load_back_and_prefix_hashes_grow_incrementally() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, b"abcdefgh").unwrap();
        let mut h = PrefixHash::new(File::open(&input).unwrap());
        h.advance(3).unwrap();
        h.advance(8).unwrap();
        assert_eq!(h.hex(), hex::encode(Sha256::digest(b"abcdefgh")));
        assert!(h.advance(9).is_err());

        let path = dir.path().join("in.csv.checkpoint");
        assert_eq!(Checkpoint::load(&path).unwrap(), None);
        let cp = Checkpoint::new("csv", Position { offset: 8, line: 3 }, h.hex(), 42, Counts::default());
        cp.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), Some(cp));
        std::fs::write(&path, "{").unwrap();
        assert!(Checkpoint::load(&path).unwrap_err().to_string().contains("--restart"));
    }
}
