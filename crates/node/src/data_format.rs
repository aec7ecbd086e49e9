//! The on-disk format of a node's data folder, recorded in its `format` file so that a node
//! never reads data written in a layout it does not expect.
//!
//! | format | what changed |
//! | --- | --- |
//! | 1 | the first layout; folders written before the `format` file existed are format 1 |
//! | 2 | finalized blocks are stored zstd-compressed ([BLOCK_COMPRESSION_LEVEL]) |
//! | 3 | as 2, and the index keeps transaction receipts and history entries in a compact binary encoding instead of JSON |
//! | 4 | as 3, and the index keeps a transaction's place in the chain with its receipt and one list of transactions per block, instead of three entries per transaction and one per movement |
//! | 5 | as 4, and the entries that find readings by id are kept in a log-structured store of their own ([crate::index_store], then in the folder `reading-ids`) instead of in `index.redb` |
//! | 6 | as 5, and that store (now the folder `readings`) keeps the committed readings by device too, instead of `index.redb` |
//! | 7 | as 6, and the consensus cache of blocks not yet finalized is kept in files of [MARSHAL_VIEWS_PER_SECTION] views instead of 4,096 |
//! | 8 | as 7, and the store (now the folder `index.lsm`) keeps transaction receipts, account histories and each block's list of transactions too, instead of `index.redb` |
//!
//! A new folder starts at [CURRENT]. A format 2 to 5 folder becomes format [UPGRADED] when a
//! node opens it: its blocks are already compressed, the index reads the entries written
//! before in their layout and writes the current one from then on, the readings kept by device
//! in `index.redb` are moved into the store ([crate::index::Index::with_index_store]), and a
//! Verity that knows only the earlier formats then refuses the folder instead of misreading
//! it. It does not become format 7: the size of the cache's files is fixed when they are
//! first written. A format 7 folder becomes format 8 when a node opens it, once its index has
//! moved its transaction entries into the store ([crate::runner::open_index]); a format 6
//! folder stays format 6, with its transaction entries in `index.redb`, since format 8 has the
//! cache files of format 7. For the same reason a format 1 folder stays format 1: its blocks stay
//! uncompressed and its index keeps writing JSON and every reading entry into `index.redb`.

use std::{
    fs,
    io::{self, Write},
    num::NonZeroU64,
    path::{Path, PathBuf},
};

/// The format a new data folder is created with.
pub const CURRENT: u32 = 8;

/// The format a folder of format 2 to 5 becomes when a node opens it.
pub const UPGRADED: u32 = 6;

/// The format whose folders become [CURRENT] once their index has moved its transaction
/// entries into its store ([crate::runner::open_index]); until then they stay this format.
pub const MOVES_TO_CURRENT: u32 = 7;

/// Views per file of the consensus cache of blocks not yet finalized from format 7
/// ([crate::engine::MARSHAL_VIEW_RETENTION] views are kept, and a file goes once all its
/// views are older): at most 512 views of blocks on disk, where 4,096 views per file kept up to
/// 4,352.
pub const MARSHAL_VIEWS_PER_SECTION: u64 = 256;

/// Views per file of that cache before format 7.
pub const FORMAT_6_MARSHAL_VIEWS_PER_SECTION: u64 = 4096;

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

    /// Whether the index writes receipts and history entries in the compact encoding, in the
    /// layout of format 4 (formats 2 and 3 become 4 when opened).
    pub fn compact_index(self) -> bool {
        self.0 >= 3
    }

    /// What the index keeps in its [crate::index_store] rather than in `index.redb`: readings
    /// from format 6 (formats 2 to 5 become 6 when opened), transaction entries too from
    /// format 8.
    pub fn index_store(self) -> Option<crate::index_store::Holds> {
        use crate::index_store::Holds;
        match self.0 {
            8.. => Some(Holds::ReadingsAndTransactions),
            6 | 7 => Some(Holds::Readings),
            _ => None,
        }
    }

    /// Views per file of the consensus cache of blocks not yet finalized.
    pub fn marshal_views_per_section(self) -> NonZeroU64 {
        let views = if self.0 >= 7 {
            MARSHAL_VIEWS_PER_SECTION
        } else {
            FORMAT_6_MARSHAL_VIEWS_PER_SECTION
        };
        NonZeroU64::new(views).expect("not zero")
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
            if (2..UPGRADED).contains(&found) {
                // Formats 4 to 6 differ from 2 and 3 only in where the index keeps its entries,
                // which it reads in every layout and moves or writes anew from now on.
                write_marker(data_dir, DataFormat(UPGRADED)).map_err(io_err)?;
                return Ok(DataFormat(UPGRADED));
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

/// Records that `data_dir` is now of `format`, once what the format needs is in place.
pub fn upgrade(data_dir: &Path, format: DataFormat) -> Result<DataFormat, DataFormatError> {
    write_marker(data_dir, format).map_err(|source| DataFormatError::Io {
        path: data_dir.join(FILE_NAME),
        source,
    })?;
    Ok(format)
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
    use crate::index_store::Holds;

    #[test]
    fn a_new_folder_gets_the_current_format_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = open(dir.path()).unwrap();
        assert_eq!(f, DataFormat(CURRENT));
        assert_eq!(f.block_compression(), Some(BLOCK_COMPRESSION_LEVEL));
        assert_eq!(f.index_store(), Some(Holds::ReadingsAndTransactions));
        assert_eq!(
            f.marshal_views_per_section().get(),
            MARSHAL_VIEWS_PER_SECTION
        );
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
        assert!(!f.compact_index());
        assert_eq!(f.index_store(), None);
        // The guess is recorded, so it cannot change later.
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(text.trim(), "1");
        assert_eq!(open(dir.path()).unwrap(), DataFormat(1));
    }

    #[test]
    fn format_2_to_6_folders_become_format_6_and_keep_their_blocks_and_cache_files() {
        for old in ["2", "3", "4", "5", "6"] {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir_all(dir.path().join("storage/node-blocks-freezer-value")).unwrap();
            fs::write(dir.path().join(FILE_NAME), format!("{old}\n")).unwrap();
            let f = open(dir.path()).unwrap();
            assert_eq!(f, DataFormat(6), "from format {old}");
            assert_eq!(f.block_compression(), Some(BLOCK_COMPRESSION_LEVEL));
            assert!(f.compact_index());
            assert_eq!(f.index_store(), Some(Holds::Readings));
            assert_eq!(
                f.marshal_views_per_section().get(),
                FORMAT_6_MARSHAL_VIEWS_PER_SECTION
            );
            let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
            assert_eq!(text.trim(), "6");
        }
    }

    #[test]
    fn a_format_7_folder_reads_as_format_7_until_its_transactions_have_moved() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("storage/node-blocks-freezer-value")).unwrap();
        fs::write(dir.path().join(FILE_NAME), "7\n").unwrap();
        let f = open(dir.path()).unwrap();
        assert_eq!(f, DataFormat(7));
        assert_eq!(f.index_store(), Some(Holds::Readings));
        assert_eq!(
            f.marshal_views_per_section().get(),
            MARSHAL_VIEWS_PER_SECTION
        );
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(text.trim(), "7");
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
