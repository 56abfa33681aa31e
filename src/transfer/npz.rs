//! NumPy's `.npz`: a zip archive of `.npy` files, written as a stream (no seeking, no
//! temporary file) so an HTTP download of every shape starts at once and memory stays flat.
//!
//! Entries are stored (not deflated: bitmaps of strokes compress, but NumPy loads stored
//! entries without a copy and the download is LAN-local). Each entry's CRC and size follow
//! its data in a data descriptor (general-purpose flag bit 3); the central directory at
//! the end repeats them, and that is what `zipfile` (and so `np.load`) reads. Plain zip,
//! not zip64: an archive stops at 4 GiB and 65 535 entries, refused with an error rather
//! than written corrupt.

use std::io::{self, Write};

/// Local file header signature.
const LOCAL: u32 = 0x0403_4b50;
/// Data descriptor signature.
const DESCRIPTOR: u32 = 0x0807_4b50;
/// Central directory header signature.
const CENTRAL: u32 = 0x0201_4b50;
/// End of central directory signature.
const END: u32 = 0x0605_4b50;
/// Version 2.0: what stored entries with data descriptors need.
const VERSION: u16 = 20;
/// Bit 3 (sizes and CRC in a data descriptor) and bit 11 (names are UTF-8).
const FLAGS: u16 = 0x0808;

/// One entry already written, for the central directory.
struct Entry {
    name: String,
    crc: u32,
    size: u32,
    offset: u32,
}

/// A zip archive being written to `out`, entry by entry.
pub struct ZipStream<W: Write> {
    out: Counter<W>,
    entries: Vec<Entry>,
    /// MS-DOS date stamped on every entry.
    dos_date: u16,
}

impl<W: Write> ZipStream<W> {
    /// An archive whose entries are dated `year-month-day` (time 00:00).
    pub fn new(out: W, (year, month, day): (u16, u8, u8)) -> Self {
        let dos_date = (year.saturating_sub(1980) << 9) | (u16::from(month) << 5) | u16::from(day);
        Self {
            out: Counter::new(out),
            entries: Vec::new(),
            dos_date,
        }
    }

    /// Adds the entry `name` with the bytes `write` produces.
    pub fn entry<E: From<io::Error>>(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.entries.len() >= usize::from(u16::MAX) {
            return Err(too_large("more than 65535 entries").into());
        }
        let offset = small(self.out.bytes, "archive")?;
        let mut header = Vec::with_capacity(30 + name.len());
        put32(&mut header, LOCAL);
        put16(&mut header, VERSION);
        put16(&mut header, FLAGS);
        put16(&mut header, 0); // stored
        put16(&mut header, 0); // time
        put16(&mut header, self.dos_date);
        header.extend_from_slice(&[0; 12]); // CRC and sizes: in the descriptor
        put16(&mut header, name.len() as u16);
        put16(&mut header, 0); // no extra field
        header.extend_from_slice(name.as_bytes());
        self.out.write_all(&header)?;
        let mut data = Counter::new(&mut self.out);
        write(&mut data)?;
        let (crc, size) = (data.crc.clone().finalize(), data.bytes);
        let size = small(size, name)?;
        let mut descriptor = Vec::with_capacity(16);
        put32(&mut descriptor, DESCRIPTOR);
        put32(&mut descriptor, crc);
        put32(&mut descriptor, size);
        put32(&mut descriptor, size);
        self.out.write_all(&descriptor)?;
        self.entries.push(Entry {
            name: name.to_owned(),
            crc,
            size,
            offset,
        });
        Ok(())
    }

    /// Writes the central directory; answers the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let start = small(self.out.bytes, "archive")?;
        let mut directory = Vec::new();
        for e in &self.entries {
            put32(&mut directory, CENTRAL);
            put16(&mut directory, VERSION);
            put16(&mut directory, VERSION);
            put16(&mut directory, FLAGS);
            put16(&mut directory, 0); // stored
            put16(&mut directory, 0); // time
            put16(&mut directory, self.dos_date);
            put32(&mut directory, e.crc);
            put32(&mut directory, e.size);
            put32(&mut directory, e.size);
            put16(&mut directory, e.name.len() as u16);
            directory.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
            put32(&mut directory, 0); // external attributes
            put32(&mut directory, e.offset);
            directory.extend_from_slice(e.name.as_bytes());
        }
        let size = small(directory.len() as u64, "directory")?;
        let count = self.entries.len() as u16;
        put32(&mut directory, END);
        put32(&mut directory, 0); // this disk, the directory's disk
        put16(&mut directory, count);
        put16(&mut directory, count);
        put32(&mut directory, size);
        put32(&mut directory, start);
        put16(&mut directory, 0); // no comment
        self.out.write_all(&directory)?;
        self.out.flush()?;
        Ok(self.out.inner)
    }
}

/// Counts and checksums what passes through.
struct Counter<W: Write> {
    inner: W,
    bytes: u64,
    crc: crc32fast::Hasher,
}

impl<W: Write> Counter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            bytes: 0,
            crc: crc32fast::Hasher::new(),
        }
    }
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.bytes += n as u64;
        self.crc.update(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn small(value: u64, what: &str) -> io::Result<u32> {
    u32::try_from(value).map_err(|_| too_large(&format!("{what} is over 4 GiB")))
}

fn too_large(why: &str) -> io::Error {
    io::Error::other(format!(
        "the archive would need zip64 ({why}); export fewer drawings at a time"
    ))
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_lists_its_entries_with_their_checksums() {
        let mut zip = ZipStream::new(Vec::new(), (2026, 12, 1));
        zip.entry::<io::Error>("a.npy", |w| w.write_all(b"hello"))
            .unwrap();
        zip.entry::<io::Error>("b.npy", |w| w.write_all(b""))
            .unwrap();
        let bytes = zip.finish().unwrap();
        // Local header of the first entry, its data, then its descriptor.
        assert_eq!(&bytes[..4], &LOCAL.to_le_bytes());
        assert_eq!(&bytes[30..35], b"a.npy");
        assert_eq!(&bytes[35..40], b"hello");
        let crc = crc32fast::hash(b"hello").to_le_bytes();
        assert_eq!(&bytes[40..44], &DESCRIPTOR.to_le_bytes());
        assert_eq!(&bytes[44..48], &crc);
        // The end record counts two entries and points at the directory.
        let end = &bytes[bytes.len() - 22..];
        assert_eq!(&end[..4], &END.to_le_bytes());
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 2);
        let start = u32::from_le_bytes([end[16], end[17], end[18], end[19]]) as usize;
        assert_eq!(&bytes[start..start + 4], &CENTRAL.to_le_bytes());
    }
}
