//! Output writers for the labelport export pipeline that keep memory bounded no matter
//! how large an export is.
//!
//! - [`Spool`]: a temporary file with a hard size limit, for bytes that must be held back
//!   until later (a section of a document written out of order, a ZIP central directory).
//! - [`ZipWriter`]: a ZIP (with Zip64) writer that only ever appends to its output, so an
//!   archive can go straight into an S3 multipart upload. Entry data is compressed ahead
//!   of time with [`prepare`] (on any thread), or streamed for entries too large for memory.
//! - [`WorkbookWriter`]: an XLSX workbook written row by row in rust_xlsxwriter's
//!   constant-memory mode, continuing on a new sheet past Excel's row limit.
#![deny(missing_docs)]

pub mod spool;
pub mod workbook;
pub mod zip;

pub use spool::{Spool, SpoolError};
pub use workbook::{SheetCell, Sheets, WorkbookError, WorkbookWriter, EXCEL_MAX_ROWS};
pub use zip::{prepare, Deflater, EntryDeflater, Method, Prepared, ZipError, ZipWriter};
