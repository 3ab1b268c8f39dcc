//! A streaming XLSX workbook. Rows go to rust_xlsxwriter worksheets in constant-memory
//! mode, where a row is written to a temporary file as soon as the next one begins and
//! strings are stored inline. So memory does not grow with the export; the temporary
//! files hold about the sheet's XML until the workbook is zipped at the end.
//!
//! Those files are bounded like every spool: they go to a folder of their own, are
//! measured as rows are written, and past the bound the workbook refuses the next row
//! ([`WorkbookError::Full`]) rather than fill the disk the other spools share.
//!
//! A sheet holds at most `max_rows` rows under its header (Excel's limit is 1,048,576
//! rows, the header included). Past that, the rows continue on a new sheet with the
//! same header, and the sheets are named by the rows they hold (`Tasks 1-1048575`,
//! `Tasks 1048576-1200000`), so the workbook says where it was cut.

use rust_xlsxwriter::{Format, Workbook, XlsxError};
use std::io;
use std::path::{Path, PathBuf};

/// The most rows under the header that Excel opens in one sheet.
pub const EXCEL_MAX_ROWS: u32 = 1_048_575;

/// The sheets' temporary files are measured each time about this much XML has been
/// written since the last time (or a sixteenth of the bound, if less): often enough that
/// the bound is passed by little, rarely enough that measuring costs nothing visible.
const MEASURE_EVERY: u64 = 1 << 20;

/// About the XML around a cell's text (`<c r="AB1048576" t="inlineStr"><is><t>` and
/// `</t></is></c>`): what [`MEASURE_EVERY`] counts besides the text.
const CELL_XML: u64 = 48;
/// About the XML around a row (`<row r="1048576">` and `</row>`).
const ROW_XML: u64 = 32;

/// One cell of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SheetCell<'a> {
    /// The cell's text.
    pub text: &'a str,
    /// Shown as text even though it looks like a formula (Excel's quote prefix): the
    /// value stays exact, and editing the cell does not turn it into a formula.
    pub quoted: bool,
}

/// Why the workbook could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WorkbookError {
    /// rust_xlsxwriter refused (a temporary file, a limit).
    #[error("writing the workbook: {0}")]
    Xlsx(#[from] XlsxError),
    /// The sheets' temporary files passed their bound; the row was not written.
    #[error("the workbook's sheets need more than {limit} bytes of temporary files")]
    Full {
        /// The bound, in bytes.
        limit: u64,
    },
    /// The folder for the sheets' temporary files could not be made.
    #[error("making the workbook's temporary folder: {0}")]
    Io(#[from] io::Error),
}

/// The workbook being written.
pub struct WorkbookWriter {
    workbook: Workbook,
    /// rust_xlsxwriter's temporary files, and nothing else: what they hold is measured
    /// here. Removed when the writer is dropped.
    tempdir: tempfile::TempDir,
    /// At most this many bytes in the temporary files.
    temp_limit: u64,
    /// Bytes in the temporary files when last measured.
    temp_bytes: u64,
    /// About how much XML was written since then (text and [`CELL_XML`], [`ROW_XML`]).
    unmeasured: u64,
    header: Vec<(String, bool)>,
    max_rows: u32,
    quoted: Format,
    /// Rows under the header in the current sheet.
    rows_in_sheet: u32,
    /// Rows written, over every sheet.
    rows: u64,
    sheets: usize,
}

/// What the workbook holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheets {
    /// Each sheet's name, in order.
    pub names: Vec<String>,
    /// Rows under the headers, over every sheet.
    pub rows: u64,
    /// Bytes the sheets held in temporary files before they were zipped.
    pub temp_bytes: u64,
}

impl WorkbookWriter {
    /// Starts a workbook whose sheets begin with `header`; temporary files go to a new
    /// folder in `tempdir` (the system's when `None`) and hold at most `temp_limit`
    /// bytes. `max_rows` is capped at [`EXCEL_MAX_ROWS`].
    pub fn new(
        tempdir: Option<&Path>,
        temp_limit: u64,
        header: Vec<(String, bool)>,
        max_rows: u32,
    ) -> Result<Self, WorkbookError> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("labelport-xlsx-");
        let tempdir = match tempdir {
            Some(dir) => builder.tempdir_in(dir)?,
            None => builder.tempdir()?,
        };
        let mut workbook = Workbook::new();
        // The zip at the end is serial: level 3 deflates the sheets three times as fast
        // as the default 6, for files about 13% larger.
        workbook.set_zip_compression_level(3);
        workbook.set_tempdir(tempdir.path())?;
        let mut writer = WorkbookWriter {
            workbook,
            tempdir,
            temp_limit,
            temp_bytes: 0,
            unmeasured: 0,
            header,
            max_rows: max_rows.clamp(1, EXCEL_MAX_ROWS),
            quoted: Format::new().set_quote_prefix(),
            rows_in_sheet: 0,
            rows: 0,
            sheets: 0,
        };
        writer.new_sheet()?;
        Ok(writer)
    }

    fn new_sheet(&mut self) -> Result<(), WorkbookError> {
        let sheet = self.workbook.add_worksheet_with_constant_memory()?;
        sheet.set_freeze_panes(1, 0)?;
        for (column, (text, quoted)) in self.header.iter().enumerate() {
            let column = u16::try_from(column).unwrap_or(u16::MAX);
            if *quoted {
                sheet.write_string_with_format(0, column, text, &self.quoted)?;
            } else {
                sheet.write_string(0, column, text)?;
            }
        }
        self.sheets += 1;
        self.rows_in_sheet = 0;
        Ok(())
    }

    /// Appends one row, unless the temporary files have passed their bound
    /// ([`WorkbookError::Full`]).
    pub fn row<'c>(
        &mut self,
        cells: impl Iterator<Item = SheetCell<'c>>,
    ) -> Result<(), WorkbookError> {
        let full = self.temp_bytes > self.temp_limit;
        if full || self.unmeasured >= MEASURE_EVERY.min(self.temp_limit / 16) {
            self.measure()?;
        }
        if self.rows_in_sheet == self.max_rows {
            self.new_sheet()?;
        }
        self.rows_in_sheet += 1;
        self.rows += 1;
        let row = self.rows_in_sheet;
        let sheet = self.workbook.worksheet_from_index(self.sheets - 1)?;
        for (column, cell) in cells.enumerate() {
            if cell.text.is_empty() {
                continue;
            }
            let column = u16::try_from(column).unwrap_or(u16::MAX);
            if cell.quoted {
                sheet.write_string_with_format(row, column, cell.text, &self.quoted)?;
            } else {
                sheet.write_string(row, column, cell.text)?;
            }
            self.unmeasured += cell.text.len() as u64 + CELL_XML;
        }
        self.unmeasured += ROW_XML;
        Ok(())
    }

    /// Measures the temporary files; past the bound, [`WorkbookError::Full`].
    fn measure(&mut self) -> Result<(), WorkbookError> {
        // Where descriptors cannot be listed (not Linux), the estimate stands in.
        self.temp_bytes =
            open_bytes_under(self.tempdir.path()).unwrap_or(self.temp_bytes + self.unmeasured);
        self.unmeasured = 0;
        if self.temp_bytes > self.temp_limit {
            return Err(WorkbookError::Full {
                limit: self.temp_limit,
            });
        }
        Ok(())
    }

    /// Names the sheets, zips the workbook into `sink`, and says what it holds.
    pub fn finish(mut self, sink: impl std::io::Write + Send) -> Result<Sheets, WorkbookError> {
        self.measure()?;
        let mut names = Vec::with_capacity(self.sheets);
        for index in 0..self.sheets {
            let name = if self.sheets == 1 {
                "Tasks".to_owned()
            } else {
                let first = index as u64 * u64::from(self.max_rows) + 1;
                let last = (first + u64::from(self.max_rows) - 1).min(self.rows);
                format!("Tasks {first}-{last}")
            };
            self.workbook.worksheet_from_index(index)?.set_name(&name)?;
            names.push(name);
        }
        self.workbook.save_to_writer(sink)?;
        Ok(Sheets {
            names,
            rows: self.rows,
            temp_bytes: self.temp_bytes,
        })
    }
}

/// Bytes in the files this process holds open under `dir`. rust_xlsxwriter's temporary
/// files are unlinked as soon as they are made, so `dir` lists none of them; the
/// process's descriptors still lead to them (`/proc/self/fd`, Linux). A file's size
/// trails what was written by rust_xlsxwriter's write buffer (8 KiB).
fn open_bytes_under(dir: &Path) -> io::Result<u64> {
    // Descriptors name the folder by its canonical path (no symbolic links).
    let dir: PathBuf = dir.canonicalize()?;
    let mut bytes = 0;
    for descriptor in std::fs::read_dir("/proc/self/fd")? {
        let descriptor = descriptor?.path();
        // A descriptor may close between listing and reading it: then it holds nothing.
        let Ok(target) = std::fs::read_link(&descriptor) else {
            continue;
        };
        if target.starts_with(&dir) {
            // Follows the descriptor to the file, unlinked or not (not to the folder
            // itself, which someone may be listing).
            bytes +=
                std::fs::metadata(&descriptor).map_or(0, |m| if m.is_file() { m.len() } else { 0 });
        }
    }
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cells<'a>(texts: &'a [&'a str]) -> impl Iterator<Item = SheetCell<'a>> + 'a {
        texts.iter().map(|t| SheetCell {
            text: t,
            quoted: t.starts_with('='),
        })
    }

    #[test]
    fn rows_past_the_limit_continue_on_a_named_sheet() {
        let header = vec![("id".to_owned(), false), ("label".to_owned(), false)];
        let mut writer = WorkbookWriter::new(None, u64::MAX, header, 2).unwrap();
        for id in ["t1", "t2", "t3", "t4", "t5"] {
            writer.row(cells(&[id, "=x"])).unwrap();
        }
        let mut bytes = Vec::new();
        let sheets = writer.finish(std::io::Cursor::new(&mut bytes)).unwrap();
        assert_eq!(sheets.names, ["Tasks 1-2", "Tasks 3-4", "Tasks 5-5"]);
        assert_eq!(sheets.rows, 5);
        assert_eq!(&bytes[..2], b"PK", "an XLSX is a ZIP");
    }

    #[test]
    fn the_sheets_temporary_files_count_and_are_refused_past_their_bound() {
        let dir = tempfile::tempdir().unwrap();
        let limit = 256 << 10;
        let header = vec![("id".to_owned(), false), ("text".to_owned(), false)];
        let mut writer =
            WorkbookWriter::new(Some(dir.path()), limit, header, EXCEL_MAX_ROWS).unwrap();
        let text = "x".repeat(200);
        let mut rows = 0;
        let refused = loop {
            match writer.row(cells(&["t-000001", &text])) {
                Ok(()) => rows += 1,
                Err(e) => break e,
            }
            assert!(
                rows < 10_000,
                "the workbook wrote 2 MB of rows and was never refused"
            );
        };
        assert!(
            matches!(refused, WorkbookError::Full { limit: 262_144 }),
            "{refused:?}"
        );
        assert_eq!(
            refused.to_string(),
            "the workbook's sheets need more than 262144 bytes of temporary files"
        );
        // The files are unlinked: the folder lists nothing, yet they fill the disk, and
        // they were measured a little past the bound (a measuring step is a sixteenth).
        let folders: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(folders.len(), 1);
        let folder = &folders[0];
        assert_eq!(std::fs::read_dir(folder).unwrap().count(), 0);
        #[cfg(target_os = "linux")]
        {
            let held = open_bytes_under(dir.path()).unwrap();
            assert!(held > limit && held < limit + limit / 8, "{held} bytes");
            assert!(
                rows > 500,
                "{rows} rows of about 300 bytes before the refusal"
            );
        }
        // Refused rows stay refused; dropping the writer frees the disk and the folder.
        assert!(writer.row(cells(&["t-000002", &text])).is_err());
        drop(writer);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        #[cfg(target_os = "linux")]
        assert_eq!(open_bytes_under(dir.path()).unwrap(), 0);
    }

    #[test]
    fn the_temporary_bytes_are_reported() {
        let header = vec![("id".to_owned(), false)];
        let mut writer = WorkbookWriter::new(None, 1 << 30, header, EXCEL_MAX_ROWS).unwrap();
        for _ in 0..1_000 {
            writer.row(cells(&["t-000001"])).unwrap();
        }
        let sheets = writer.finish(std::io::Cursor::new(Vec::new())).unwrap();
        // About 60 bytes of XML a row.
        assert!(
            (30_000..150_000).contains(&sheets.temp_bytes),
            "{}",
            sheets.temp_bytes
        );
    }

    #[test]
    fn one_sheet_is_called_tasks() {
        let writer =
            WorkbookWriter::new(None, u64::MAX, vec![("id".to_owned(), false)], 10).unwrap();
        let sheets = writer.finish(std::io::Cursor::new(Vec::new())).unwrap();
        assert_eq!((sheets.names, sheets.rows), (vec!["Tasks".to_owned()], 0));
    }
}
