//! The on-disk format of a node's data folder, recorded in its `format` file so that a node
//! never reads data written in a layout it does not expect.
//!
//! | format | what changed |
//! | --- | --- |
//! | 1 | the first layout; folders written before the `format` file existed are format 1 |
//! | 2 | finalized blocks are stored zstd-compressed ([BLOCK_COMPRESSION_LEVEL]) |
//!
//! A node keeps the format a folder was created with: format 1 folders keep working,
//! uncompressed, and a new folder starts at [CURRENT].

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

/// The format a new data folder is created with.
pub const CURRENT: u32 = 2;

/// zstd level of the finalized-blocks archive from format 2 on. Level 3 halves the size of
/// a block of readings (device ids, record names and units repeat) at a cost far below a
/// block's other work.
pub const BLOCK_COMPRESSION_LEVEL: u8 = 3;

/// Name of the marker file inside the data folder.
pub const FILE_NAME: &str = "format";

/// The folder inside the data folder that holds the consensus archives and ledger state.
pub const STORAGE_DIR: &str = "storage";

/// The layout of one data folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataFormat(pub u32);

impl DataFormat {
    /// The zstd level of the finalized-blocks archive, if it is compressed.
    pub fn block_compression(self) -> Option<u8> {
        (self.0 >= 2).then_some(BLOCK_COMPRESSION_LEVEL)
    }
}

/// Why a data folder cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataFormatError {
    /// The marker could not be read or written.
    #[error("data folder format file {path}: {source}")]
    Io {
        /// The marker file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The marker holds something other than a format number.
    #[error("data folder format file {path} holds {found:?}, not a format number")]
    Corrupt {
        /// The marker file.
        path: PathBuf,
        /// Its content.
        found: String,
    },
    /// A newer Verity wrote this folder.
    #[error(
        "data folder {dir} has format {found}, written by a newer Verity; this one reads formats 1 to {CURRENT}"
    )]
    Newer {
        /// The data folder.
        dir: PathBuf,
        /// Its format.
        found: u32,
    },
}

/// Reads the format of `data_dir`, recording it first if the folder has none: a folder that
/// already holds storage is format 1 (it predates the marker), an empty one gets [CURRENT].
pub fn open(data_dir: &Path) -> Result<DataFormat, DataFormatError> {
    let path = data_dir.join(FILE_NAME);
    let io_err = |source| DataFormatError::Io {
        path: path.clone(),
        source,
    };
    match fs::read_to_string(&path) {
        Ok(text) => {
            let found: u32 = text
                .trim()
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| DataFormatError::Corrupt {
                    path: path.clone(),
                    found: text.clone(),
                })?;
            if found > CURRENT {
                return Err(DataFormatError::Newer {
                    dir: data_dir.to_path_buf(),
                    found,
                });
            }
            Ok(DataFormat(found))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let legacy = fs::read_dir(data_dir.join(STORAGE_DIR))
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false);
            let format = DataFormat(if legacy { 1 } else { CURRENT });
            write_marker(data_dir, format).map_err(io_err)?;
            Ok(format)
        }
        Err(e) => Err(io_err(e)),
    }
}

/// Writes the marker so that a crash leaves either no marker or a whole one.
fn write_marker(data_dir: &Path, format: DataFormat) -> io::Result<()> {
    let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
    let mut f = fs::File::create(&tmp)?;
    writeln!(f, "{}", format.0)?;
    f.sync_all()?;
    fs::rename(&tmp, data_dir.join(FILE_NAME))?;
    fs::File::open(data_dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_folder_gets_the_current_format_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = open(dir.path()).unwrap();
        assert_eq!(f, DataFormat(CURRENT));
        assert_eq!(f.block_compression(), Some(BLOCK_COMPRESSION_LEVEL));
        // Storage written since does not make it look older.
        fs::create_dir_all(dir.path().join("storage/blocks")).unwrap();
        assert_eq!(open(dir.path()).unwrap(), DataFormat(CURRENT));
    }

    #[test]
    fn a_folder_with_storage_and_no_marker_is_format_1_uncompressed() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("storage/node-blocks-freezer-value")).unwrap();
        let f = open(dir.path()).unwrap();
        assert_eq!(f, DataFormat(1));
        assert_eq!(f.block_compression(), None);
        // The guess is recorded, so it cannot change later.
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(text.trim(), "1");
        assert_eq!(open(dir.path()).unwrap(), DataFormat(1));
    }

    #[test]
    fn a_newer_or_corrupt_marker_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), format!("{}\n", CURRENT + 1)).unwrap();
        assert!(matches!(
            open(dir.path()),
            Err(DataFormatError::Newer { found, .. }) if found == CURRENT + 1
        ));
        for bad in ["", "two", "0", "-1"] {
            fs::write(dir.path().join(FILE_NAME), bad).unwrap();
            assert!(
                matches!(open(dir.path()), Err(DataFormatError::Corrupt { .. })),
                "{bad:?} accepted"
            );
        }
    }
}
