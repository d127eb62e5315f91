//! The reject file: one JSON object per rejected row — its line, the reasons (the canonical
//! parser's field errors) and the row as written. It holds the input's raw values, personal
//! fields included, so it is created readable by its owner only, like the input should be.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::rows::Reject;

pub(crate) struct RejectFile {
    path: PathBuf,
    file: Option<File>,
    len: u64,
}

impl RejectFile {
    /// A fresh import (`resume_len` `None`) removes a reject file left by an earlier one; a
    /// resumed import cuts off what was written after its checkpoint.
    pub fn open(path: &Path, resume_len: Option<u64>) -> anyhow::Result<Self> {
        let ctx = || format!("cannot prepare the reject file {}", path.display());
        let mut this = Self { path: path.to_owned(), file: None, len: 0 };
        match resume_len {
            None | Some(0) => match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(ctx),
            },
            Some(len) => {
                let mut file = OpenOptions::new().write(true).open(path).with_context(ctx)?;
                let have = file.metadata().with_context(ctx)?.len();
                if have < len {
                    anyhow::bail!(
                        "the reject file {} is shorter than the checkpoint records ({have} < {len} bytes); \
                         rerun with --restart",
                        path.display()
                    );
                }
                file.set_len(len).with_context(ctx)?;
                file.seek(SeekFrom::End(0)).with_context(ctx)?;
                this.file = Some(file);
                this.len = len;
            }
        }
        Ok(this)
    }

    /// Appends rejected rows and makes them durable (before the checkpoint that counts them).
    pub fn append(&mut self, rejects: &[Reject]) -> anyhow::Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::new();
        for r in rejects {
            serde_json::to_writer(&mut bytes, r)?;
            bytes.push(b'\n');
        }
        let ctx = || format!("cannot write the reject file {}", self.path.display());
        if self.file.is_none() {
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            self.file = Some(options.open(&self.path).with_context(ctx)?);
        }
        let file = self.file.as_mut().with_context(ctx)?;
        file.write_all(&bytes).with_context(ctx)?;
        file.sync_data().with_context(ctx)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::FieldError;

    fn reject(line: u64) -> Reject {
        Reject { line, errors: vec![FieldError::new("kind", "required", "missing field `kind`")], raw: "{}".into() }
    }

    #[test]
    fn a_resumed_import_cuts_off_rejects_written_after_its_checkpoint_and_a_fresh_one_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv.rejects.ndjson");
        let mut f = RejectFile::open(&path, None).unwrap();
        f.append(&[]).unwrap();
        assert!(!path.exists(), "no rejects, no file");
        f.append(&[reject(2)]).unwrap();
        let checkpointed = f.len();
        f.append(&[reject(7), reject(9)]).unwrap();
        drop(f);

        let mut f = RejectFile::open(&path, Some(checkpointed)).unwrap();
        f.append(&[reject(8)]).unwrap();
        let lines: Vec<u64> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["line"].as_u64().unwrap())
            .collect();
        assert_eq!(lines, [2, 8]);
        assert_eq!(f.len(), std::fs::metadata(&path).unwrap().len());

        assert!(RejectFile::open(&path, Some(f.len() + 1)).is_err(), "shorter than recorded");
        RejectFile::open(&path, None).unwrap();
        assert!(!path.exists(), "a fresh import removes the old reject file");
    }
}
