//! Where the pipeline's bytes go: the files of one export, laid out as the format's
//! [`Container`] says, plus the errors report.
//!
//! Work is split in two. On the encoder threads, [`finish_block`] finishes a block: it
//! compresses the block as one gzip member or zstd frame (members concatenate into one
//! valid file), or deflates and checksums each ZIP entry. On the caller's thread, in
//! source order, the [`Assembler`] writes finished blocks into files through [`Files`]:
//! it adds the separators between blocks, cuts parts at record boundaries, writes ZIP
//! headers, and spools the errors report. Only the rare block that straddles a part
//! boundary is compressed again on the caller's thread.
//!
//! Bounded memory: a block is at most a few MiB; the ZIP central directory and the
//! errors report are spooled to temporary files of a fixed bound ([`OutputLimits`]).

use crate::store::BoxError;
use labelport_encoders::{Compression, Container, Encoder, Out, MAX_PARTS};
use labelport_output::{
    Deflater, EntryDeflater, Method, Prepared, SheetCell, Spool, SpoolError, WorkbookError,
    WorkbookWriter, ZipError, ZipWriter,
};
use std::ops::Range;
use std::path::PathBuf;

/// The errors report's file name, beside the export's files.
pub const REPORT_NAME: &str = "errors.ndjson";

/// The files an export is written to, one after the other. The worker's are multipart
/// uploads that become visible together at the end; the CLI's are files renamed into
/// place at the end. Either way a failed export leaves nothing.
pub trait Files: Send {
    /// Ends the current file, if any, and starts the next.
    fn start(&mut self, name: &str, content_type: &str) -> Result<(), BoxError>;
    /// Appends bytes to the current file.
    fn write(&mut self, bytes: &[u8]) -> Result<(), BoxError>;
}

/// Files kept in memory, for tests and benchmarks: (name, content type, bytes).
#[derive(Debug, Default)]
pub struct MemoryFiles {
    /// Every file started, in order.
    pub files: Vec<(String, String, Vec<u8>)>,
}

impl Files for MemoryFiles {
    fn start(&mut self, name: &str, content_type: &str) -> Result<(), BoxError> {
        self.files
            .push((name.to_owned(), content_type.to_owned(), Vec::new()));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), BoxError> {
        match self.files.last_mut() {
            Some(file) => {
                file.2.extend_from_slice(bytes);
                Ok(())
            }
            None => Err("a write before any file was started".into()),
        }
    }
}

/// What a file of an export is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum FileRole {
    /// The export (or one part of it).
    Export,
    /// The errors report: what was skipped or could not be expressed.
    Errors,
}

/// A file the assembler started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedFile {
    /// Its name.
    pub name: String,
    /// Its MIME type as stored.
    pub content_type: String,
    /// What it is.
    pub role: FileRole,
}

/// Bounds of the temporary files an export may use.
#[derive(Debug, Clone)]
pub struct OutputLimits {
    /// Folder of the temporary files (`None`: the system's, /tmp on Lambda).
    pub spool_dir: Option<PathBuf>,
    /// At most this many bytes in each spool (the ZIP central directory, the errors
    /// report): 256 MiB by default, half of Lambda's default /tmp, room for ~2 million
    /// ZIP entries or report lines.
    pub spool_limit: u64,
    /// At most this many bytes in each section a format holds back to the end (COCO's
    /// images, its annotations): 1 GiB by default, about 5 million COCO annotations.
    pub section_limit: u64,
    /// At most this many bytes in an XLSX workbook's temporary files, where its sheets'
    /// XML waits to be zipped at the end: 2 GiB by default, what COCO's two sections
    /// may hold together, so the worker's /tmp has room for either.
    pub workbook_limit: u64,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            spool_dir: None,
            spool_limit: 256 << 20,
            section_limit: 1 << 30,
            workbook_limit: 2 << 30,
        }
    }
}

/// Why the output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The destination refused bytes (worth another attempt).
    #[error("writing the export")]
    Sink(#[source] BoxError),
    /// A bound or a rule of the output was hit (another attempt would hit it too).
    #[error("{0}")]
    Refused(String),
}

impl From<SpoolError> for OutputError {
    fn from(e: SpoolError) -> Self {
        match e {
            SpoolError::Full { limit } => OutputError::Refused(format!(
                "the export needs more than {} MiB of temporary space for its ZIP directory, its errors report or a section its format holds back to the end",
                limit >> 20
            )),
            SpoolError::Io(e) => OutputError::Sink(Box::new(e)),
        }
    }
}

impl From<WorkbookError> for OutputError {
    fn from(e: WorkbookError) -> Self {
        match e {
            WorkbookError::Full { limit } => OutputError::Refused(format!(
                "the XLSX workbook needs more than {} MiB of temporary space for its sheets; export fewer tasks, or choose TSV or CSV, which need none",
                limit >> 20
            )),
            other => OutputError::Sink(Box::new(other)),
        }
    }
}

/// The MIME type of an XLSX workbook.
pub const XLSX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

impl From<ZipError> for OutputError {
    fn from(e: ZipError) -> Self {
        match e {
            ZipError::Io(e) => OutputError::Sink(Box::new(e)),
            ZipError::Spool(e) => e.into(),
            other => OutputError::Refused(other.to_string()),
        }
    }
}

/// The MIME type a file is stored with: the archive's when compressed, so browsers and
/// HTTP clients save exactly the bytes whose SHA-256 the status lists.
pub fn stored_content_type(compression: Compression, content_type: &str) -> &str {
    compression.content_type().unwrap_or(content_type)
}

/// A block finished on an encoder thread.
pub struct FinishedBlock {
    /// What the encoder wrote.
    pub out: Out,
    /// `File`/`Parts`: the block's bytes compressed as one member (empty when the
    /// export is not compressed). `Zip`: every entry's prepared data, one after another.
    pub packed: Vec<u8>,
    /// `Zip`: each entry's checksum and sizes, and its data in `packed`.
    pub entries: Vec<(Prepared, Range<usize>)>,
    /// Each held-back section's bytes compressed as one member (empty when the export
    /// is not compressed: the `Out` has them).
    pub held: Vec<Vec<u8>>,
}

impl FinishedBlock {
    /// Held-back section `section` as stored, and its element count.
    fn held(&self, section: usize, compression: Compression) -> (&[u8], usize) {
        let (plain, elements) = self.out.held_bytes(section);
        if compression == Compression::None {
            (plain, elements)
        } else {
            (
                self.held.get(section).map_or(&[][..], Vec::as_slice),
                elements,
            )
        }
    }
}

/// Finishes a block that `encoder` wrote, on the encoder thread that wrote it, with
/// that thread's `deflater`. A section the encoder renumbers stays plain: the
/// assembler compresses it once renumbered.
pub fn finish_block(
    out: Out,
    encoder: &dyn Encoder,
    compression: Compression,
    deflater: &mut Deflater,
) -> FinishedBlock {
    let mut packed = Vec::new();
    let mut entries = Vec::new();
    let mut held = Vec::new();
    if compression != Compression::None {
        for section in 0..encoder.held_sections() {
            let mut member = Vec::new();
            let (plain, _) = out.held_bytes(section);
            if !plain.is_empty() && !encoder.renumbers_section(section) {
                compression.compress_block(plain, &mut member);
            }
            held.push(member);
        }
    }
    match encoder.container() {
        Container::File { .. } | Container::Parts { .. } => {
            if compression != Compression::None && !out.bytes().is_empty() {
                packed.reserve(out.bytes().len() / 3);
                compression.compress_block(out.bytes(), &mut packed);
            }
        }
        // The workbook writer zips the whole sheet at the end.
        Container::Workbook { .. } => {}
        Container::Zip => {
            packed.reserve(out.bytes().len() / 2);
            entries.reserve(out.pieces().len());
            for piece in out.pieces() {
                let start = packed.len();
                let prepared = deflater.prepare(
                    &out.bytes()[piece.bytes.clone()],
                    Method::Deflated,
                    &mut packed,
                );
                entries.push((prepared, start..packed.len()));
            }
        }
    }
    FinishedBlock {
        out,
        packed,
        entries,
        held,
    }
}

/// Writes finished blocks, in order, into the export's files. See the module docs.
pub struct Assembler<'a> {
    files: &'a mut dyn Files,
    encoder: &'a dyn Encoder,
    container: Container,
    compression: Compression,
    base: &'a str,
    limits: OutputLimits,
    started: Vec<StartedFile>,
    file_open: bool,
    records_in_file: u64,
    bytes_in_file: u64,
    zip: Option<ZipWriter>,
    workbook: Option<WorkbookWriter>,
    /// Held-back sections: each one's spool and element count so far.
    held: Vec<(Option<Spool>, u64)>,
    report: Option<Spool>,
    report_lines: u64,
    /// The format's header and footer, built once.
    header: Vec<u8>,
    footer: Vec<u8>,
    run: Vec<u8>,
}

/// What the assembler wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Every file, in order; the errors report last.
    pub files: Vec<StartedFile>,
    /// Bytes held in temporary files along the way.
    pub bytes_spooled: u64,
    /// Lines of the errors report.
    pub report_lines: u64,
}

impl<'a> Assembler<'a> {
    /// Starts the export's output: a `File` or `Zip` container opens its file now.
    /// `base` names the files (`{base}.csv`, `{base}-00001.ndjson`, `{base}.zip`);
    /// `modified_unix_secs` dates ZIP entries.
    pub fn start(
        files: &'a mut dyn Files,
        encoder: &'a dyn Encoder,
        compression: Compression,
        base: &'a str,
        limits: OutputLimits,
        modified_unix_secs: u64,
    ) -> Result<Self, OutputError> {
        let container = encoder.container();
        if encoder.held_sections() > 0
            && !matches!(container, Container::File { .. } | Container::Zip)
        {
            return Err(OutputError::Refused(
                "a format that holds sections back writes one file or one ZIP".to_owned(),
            ));
        }
        let mut assembler = Assembler {
            files,
            encoder,
            container,
            compression,
            base,
            limits,
            started: Vec::new(),
            file_open: false,
            records_in_file: 0,
            bytes_in_file: 0,
            zip: None,
            workbook: None,
            held: (0..encoder.held_sections()).map(|_| (None, 0)).collect(),
            report: None,
            report_lines: 0,
            header: Vec::new(),
            footer: Vec::new(),
            run: Vec::new(),
        };
        encoder.header(&mut assembler.header);
        encoder.footer(&mut assembler.footer);
        match container {
            Container::File { .. } => assembler.open_file(None)?,
            Container::Parts { .. } => {}
            Container::Zip => {
                assembler.begin(format!("{base}.zip"), "application/zip".to_owned())?;
                let spool = new_spool(&assembler.limits, assembler.limits.spool_limit)?;
                assembler.zip = Some(ZipWriter::new(spool, modified_unix_secs));
            }
            Container::Workbook { max_rows_per_sheet } => {
                assembler.begin(format!("{base}.xlsx"), XLSX_CONTENT_TYPE.to_owned())?;
                let header = labelport_encoders::sheet::cells(&assembler.header)
                    .map(|(text, quoted)| (text.to_owned(), quoted))
                    .collect();
                assembler.workbook = Some(WorkbookWriter::new(
                    assembler.limits.spool_dir.as_deref(),
                    assembler.limits.workbook_limit,
                    header,
                    max_rows_per_sheet,
                )?);
            }
        }
        Ok(assembler)
    }

    /// Writes one finished block, and its lines of the errors report.
    pub fn block(&mut self, block: &FinishedBlock, report: &[u8]) -> Result<(), OutputError> {
        self.report(report)?;
        self.hold(block)?;
        match self.container {
            Container::File { .. } => self.whole_block(block),
            Container::Parts {
                max_bytes,
                max_records,
                ..
            } => self.parts_block(block, max_bytes, max_records),
            Container::Zip => self.zip_block(block),
            Container::Workbook { .. } => self.workbook_block(block),
        }
    }

    /// Adds lines (each ending in `\n`) to the errors report.
    pub fn report(&mut self, lines: &[u8]) -> Result<(), OutputError> {
        if lines.is_empty() {
            return Ok(());
        }
        self.report_lines += memchr::memchr_iter(b'\n', lines).count() as u64;
        let spool = match &mut self.report {
            Some(spool) => spool,
            None => self
                .report
                .insert(new_spool(&self.limits, self.limits.spool_limit)?),
        };
        spool.write(lines)?;
        Ok(())
    }

    /// Closes the last file, writes the errors report if there is one, and says what
    /// was written.
    pub fn finish(mut self) -> Result<Written, OutputError> {
        let mut bytes_spooled = 0;
        match self.container {
            Container::File { .. } => {
                for section in 0..self.held.len() {
                    let mut opening = Vec::new();
                    self.encoder.section_opening(section, &mut opening);
                    emit(self.files, self.compression, &opening, false)?;
                    if let Some(mut spool) = self.held[section].0.take() {
                        bytes_spooled += drain(&mut spool, self.files)?;
                    }
                }
                self.close_file()?
            }
            Container::Parts { .. } => {
                // An export with no records still has one (empty) part to download.
                if !self.file_open {
                    self.open_file(Some(1))?;
                }
                self.close_file()?;
            }
            Container::Zip => {
                bytes_spooled += self.held_entries()?;
                let mut closing = Out::new(b"");
                self.encoder.closing_entries(&mut closing);
                closing.end_record();
                let finished = finish_block(
                    closing,
                    self.encoder,
                    Compression::None,
                    &mut Deflater::new(),
                );
                self.zip_block(&finished)?;
                if let Some(zip) = self.zip.take() {
                    bytes_spooled += zip.spooled_bytes();
                    let files = &mut *self.files;
                    zip.finish(&mut |b: &[u8]| files.write(b).map_err(std::io::Error::other))?;
                }
            }
            Container::Workbook { .. } => {
                if let Some(workbook) = self.workbook.take() {
                    bytes_spooled += workbook.finish(FilesWriter(&mut *self.files))?.temp_bytes;
                }
            }
        }
        if let Some(mut report) = self.report.take() {
            self.begin(REPORT_NAME.to_owned(), "application/x-ndjson".to_owned())?;
            if let Some(last) = self.started.last_mut() {
                last.role = FileRole::Errors;
            }
            bytes_spooled += drain(&mut report, self.files)?;
        }
        Ok(Written {
            files: self.started,
            bytes_spooled,
            report_lines: self.report_lines,
        })
    }
}

/// The export's current file as an `io::Write`, for writers that want one (the
/// workbook's).
struct FilesWriter<'f>(&'f mut dyn Files);

impl std::io::Write for FilesWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes).map_err(std::io::Error::other)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A spool in the export's temporary folder, of at most `limit` bytes.
fn new_spool(limits: &OutputLimits, limit: u64) -> Result<Spool, OutputError> {
    Spool::new(limits.spool_dir.as_deref(), limit).map_err(|e| OutputError::Sink(Box::new(e)))
}

/// Copies a spool into the current file; returns how many bytes it held.
fn drain(spool: &mut Spool, files: &mut dyn Files) -> Result<u64, OutputError> {
    let held = spool.len();
    spool
        .drain_into(&mut |b: &[u8]| files.write(b).map_err(std::io::Error::other))
        .map_err(|e| OutputError::Sink(Box::new(e)))?;
    Ok(held)
}

/// `plain` as the export stores it: as it is, or compressed as one member into `buffer`.
fn pack<'p>(compression: Compression, plain: &'p [u8], buffer: &'p mut Vec<u8>) -> &'p [u8] {
    if compression == Compression::None {
        return plain;
    }
    buffer.clear();
    compression.compress_block(plain, buffer);
    buffer
}

/// Writes plain bytes as the export stores them (see [`pack`]). Empty bytes are
/// skipped, unless `even_empty` and the export is compressed: an empty member still
/// makes a valid file.
fn emit(
    files: &mut dyn Files,
    compression: Compression,
    plain: &[u8],
    even_empty: bool,
) -> Result<(), OutputError> {
    if plain.is_empty() && (!even_empty || compression == Compression::None) {
        return Ok(());
    }
    let mut buffer = Vec::new();
    files
        .write(pack(compression, plain, &mut buffer))
        .map_err(OutputError::Sink)
}

impl Assembler<'_> {
    /// Writes each held-back section as a ZIP entry, deflated as it streams out of its
    /// spool; returns the bytes the spools held.
    fn held_entries(&mut self) -> Result<u64, OutputError> {
        let mut spooled = 0;
        let Some(zip) = self.zip.as_mut() else {
            return Ok(0);
        };
        let files = &mut *self.files;
        let mut sink = |b: &[u8]| files.write(b).map_err(std::io::Error::other);
        for (section, (spool, _)) in self.held.iter_mut().enumerate() {
            let mut opening = Vec::new();
            self.encoder.section_opening(section, &mut opening);
            // The spool holds the section plain (a ZIP takes no compression), so its size
            // is known. With it the entry gets Zip64 sizes only if it may need them: JDK
            // 17's ZipInputStream misreads a Zip64 data descriptor under 4 GiB.
            let size = opening.len() as u64 + spool.as_ref().map_or(0, Spool::len);
            zip.start_entry(
                self.encoder.section_entry(section),
                Method::Deflated,
                Some(size),
                &mut sink,
            )?;
            let mut deflater = EntryDeflater::new();
            deflater.write(&opening, zip, &mut sink)?;
            if let Some(mut spool) = spool.take() {
                spooled += spool.len();
                spool
                    .drain_into(&mut |b: &[u8]| {
                        deflater
                            .write(b, zip, &mut sink)
                            .map_err(std::io::Error::other)
                    })
                    .map_err(|e| OutputError::Sink(Box::new(e)))?;
            }
            deflater.finish(zip, &mut sink)?;
        }
        Ok(spooled)
    }

    /// Spools the block's elements of each held-back section.
    fn hold(&mut self, block: &FinishedBlock) -> Result<(), OutputError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let before: Vec<u64> = self.held.iter().map(|(_, elements)| *elements).collect();
        let (mut renumbered, mut packed) = (Vec::new(), Vec::new());
        for section in 0..self.held.len() {
            let renumbers = self.encoder.renumbers_section(section);
            let (mut bytes, elements) = if renumbers {
                block.out.held_bytes(section)
            } else {
                block.held(section, self.compression)
            };
            if elements == 0 {
                continue;
            }
            if renumbers {
                renumbered.clear();
                if self
                    .encoder
                    .renumber_section(section, bytes, &before, &mut renumbered)
                {
                    bytes = &renumbered;
                }
                bytes = pack(self.compression, bytes, &mut packed);
            }
            let (spool, held) = &mut self.held[section];
            let spool = match spool {
                Some(spool) => spool,
                None => spool.insert(new_spool(&self.limits, self.limits.section_limit)?),
            };
            let separator = self.encoder.separator();
            if *held > 0 && !separator.is_empty() {
                let mut buffer = Vec::new();
                spool.write(pack(self.compression, separator, &mut buffer))?;
            }
            spool.write(bytes)?;
            *held += elements as u64;
        }
        Ok(())
    }

    fn begin(&mut self, name: String, content_type: String) -> Result<(), OutputError> {
        self.files
            .start(&name, &content_type)
            .map_err(OutputError::Sink)?;
        self.started.push(StartedFile {
            name,
            content_type,
            role: FileRole::Export,
        });
        Ok(())
    }

    /// Starts the export file (`part: None`) or part `part`, and writes the header.
    fn open_file(&mut self, part: Option<u64>) -> Result<(), OutputError> {
        let (extension, content_type) = match self.container {
            Container::File {
                extension,
                content_type,
            }
            | Container::Parts {
                extension,
                content_type,
                ..
            } => (extension, content_type),
            Container::Zip => ("zip", "application/zip"),
            Container::Workbook { .. } => ("xlsx", XLSX_CONTENT_TYPE),
        };
        let suffix = self.compression.suffix();
        let name = match part {
            None => format!("{}.{extension}{suffix}", self.base),
            Some(n) => format!("{}-{n:05}.{extension}{suffix}", self.base),
        };
        let stored = stored_content_type(self.compression, content_type).to_owned();
        self.begin(name, stored)?;
        self.file_open = true;
        self.records_in_file = 0;
        self.bytes_in_file = self.header.len() as u64;
        // Even an empty header is written compressed: an empty export is still a valid
        // gzip or zstd file.
        emit(self.files, self.compression, &self.header, true)
    }

    /// Writes the footer of the open file.
    fn close_file(&mut self) -> Result<(), OutputError> {
        if !std::mem::take(&mut self.file_open) {
            return Ok(());
        }
        emit(self.files, self.compression, &self.footer, false)
    }

    /// The block's bytes as they are stored: compressed on the encoder thread, or plain.
    fn write_finished(&mut self, block: &FinishedBlock) -> Result<(), OutputError> {
        let bytes = if self.compression == Compression::None {
            block.out.bytes()
        } else {
            &block.packed
        };
        if bytes.is_empty() {
            return Ok(());
        }
        self.files.write(bytes).map_err(OutputError::Sink)
    }

    fn whole_block(&mut self, block: &FinishedBlock) -> Result<(), OutputError> {
        let records = block.out.records() as u64;
        if records == 0 {
            return Ok(());
        }
        if self.records_in_file > 0 {
            emit(
                self.files,
                self.compression,
                self.encoder.separator(),
                false,
            )?;
        }
        self.write_finished(block)?;
        self.records_in_file += records;
        self.bytes_in_file += block.out.bytes().len() as u64;
        Ok(())
    }

    fn parts_block(
        &mut self,
        block: &FinishedBlock,
        max_bytes: u64,
        max_records: u64,
    ) -> Result<(), OutputError> {
        let records = block.out.records() as u64;
        if records == 0 {
            return Ok(());
        }
        if !self.file_open {
            self.open_file(Some(1))?;
        }
        let separator = self.encoder.separator();
        let footer = self.footer.len() as u64;
        let joint = if self.records_in_file > 0 {
            separator.len() as u64
        } else {
            0
        };
        let fits = self.bytes_in_file + joint + block.out.bytes().len() as u64 + footer
            <= max_bytes
            && self.records_in_file + records <= max_records;
        if fits {
            return self.whole_block(block);
        }
        // The block straddles a part boundary: cut it between records, compressing each
        // run of records that lands in one part as one member.
        let mut run = std::mem::take(&mut self.run);
        run.clear();
        let bytes = block.out.bytes();
        for piece in block.out.pieces().iter().filter(|p| p.name.is_none()) {
            let record = &bytes[piece.bytes.clone()];
            let joint = if self.records_in_file > 0 {
                separator.len() as u64
            } else {
                0
            };
            let full = self.bytes_in_file + joint + record.len() as u64 + footer > max_bytes
                || self.records_in_file + 1 > max_records;
            if full && self.records_in_file > 0 {
                let next = self.started.len() as u64 + 1;
                if next > MAX_PARTS {
                    return Err(OutputError::Refused(self.encoder.too_many_parts()));
                }
                emit(self.files, self.compression, &run, false)?;
                run.clear();
                self.close_file()?;
                self.open_file(Some(next))?;
            }
            if self.records_in_file > 0 {
                run.extend_from_slice(separator);
                self.bytes_in_file += separator.len() as u64;
            }
            run.extend_from_slice(record);
            self.bytes_in_file += record.len() as u64;
            self.records_in_file += 1;
        }
        let written = emit(self.files, self.compression, &run, false);
        self.run = run;
        written
    }

    /// Each record of the block is one row of the workbook.
    fn workbook_block(&mut self, block: &FinishedBlock) -> Result<(), OutputError> {
        let Some(workbook) = self.workbook.as_mut() else {
            return Ok(());
        };
        let bytes = block.out.bytes();
        for piece in block.out.pieces() {
            let cells = labelport_encoders::sheet::cells(&bytes[piece.bytes.clone()])
                .map(|(text, quoted)| SheetCell { text, quoted });
            workbook.row(cells)?;
        }
        Ok(())
    }

    fn zip_block(&mut self, block: &FinishedBlock) -> Result<(), OutputError> {
        let Some(zip) = self.zip.as_mut() else {
            return Ok(());
        };
        let files = &mut *self.files;
        let mut sink = |b: &[u8]| files.write(b).map_err(std::io::Error::other);
        for (piece, (prepared, data)) in block.out.pieces().iter().zip(&block.entries) {
            let Some(name) = block.out.name(piece) else {
                return Err(OutputError::Refused(format!(
                    "the format wrote bytes outside any ZIP entry (at {})",
                    zip.entries()
                )));
            };
            zip.add(name, prepared, &block.packed[data.clone()], &mut sink)?;
        }
        Ok(())
    }
}
