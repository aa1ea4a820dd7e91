//! A served feed's answers as a file: kept in step with the fleet's state, so that a
//! service killed and restarted from its last state writes every answer exactly once.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The answers of a served feed, one CSV line each after a header, in a file.
///
/// Two ways to keep one:
/// - [`AnswerFile::continued`]: a service's answers over every feed and restart, in step
///   with its [`FleetState`](super::FleetState). Before each state is saved the file is
///   [committed](AnswerFile::commit) (flushed to the disk) and its length kept in the state
///   ([`Fleet::set_answers_written`](super::Fleet::set_answers_written)); restarted from
///   that state, the file is cut back to that length — the answers of rows read after the
///   state was written, which the restarted service reads and answers again. So a service
///   killed at any moment and sent the same feed again (`--resume`) leaves each answer in
///   the file once: at-least-once reading, exactly-once answers.
/// - [`AnswerFile::replaced`]: one feed's answers, written to a temporary file beside
///   `path` and renamed onto it when [closed](AnswerFile::close): a stream stopped half-way
///   leaves the file as it was.
///
/// ```no_run
/// use recur::serve::{AnswerFile, Fleet, ServedRun};
/// use recur::tasks::LiveAnswer;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let run = ServedRun::open("runs/band")?;
/// let mut fleet = Fleet::new(&run, None)?;
/// let layout = fleet.layout("time,PM2.5,TEMP", false)?;
/// fleet.load_state("state.json")?;
/// // cut back to the state: the answers of rows read after it are written again below
/// let (mut answers, _cut) = AnswerFile::continued("answers.csv", "time,PM2.5_next", fleet.answers_written())?;
/// for (n, line) in ["2017-03-01 00:00,12,3.1", "2017-03-01 01:00,15,2.8"].into_iter().enumerate() {
///     for step in fleet.read_line(&layout, line)? {
///         if let LiveAnswer::Forecast(next) = fleet.serve(&step, 1, 0)?.answer {
///             answers.write_line(&format!("{},{}", step.passed[0], next.values[0]))?;
///         }
///     }
///     if n % 100 == 99 {
///         fleet.set_answers_written(Some(answers.commit()?)); // on the disk before the state
///         fleet.save_state("state.json")?;
///     }
/// }
/// fleet.set_answers_written(Some(answers.commit()?));
/// fleet.save_state("state.json")?;
/// # Ok(())
/// # }
/// ```
pub struct AnswerFile {
    path: PathBuf,
    out: BufWriter<File>,
    /// Bytes in the file, the buffer's included.
    len: u64,
    /// The temporary file renamed onto `path` when closed ([`AnswerFile::replaced`]).
    temp: TemporaryFile,
}

/// A temporary file's path, the file removed when dropped unless taken.
struct TemporaryFile(Option<PathBuf>);

impl Drop for TemporaryFile {
    /// A replaced file never closed (its stream stopped) leaves no temporary file behind.
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What [`AnswerFile::continued`] cut from the file's end: answers written after the
/// state it goes on from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutAnswers {
    pub lines: usize,
    pub bytes: u64,
}

impl AnswerFile {
    /// The answers file `path` of a service going on from a state written when it held
    /// `written` bytes (`None`: a state that kept no answers file, or none at all): cut back
    /// to them, and appended to from there. A new or empty file starts with `header`.
    ///
    /// # Errors
    /// Naming the file: it is shorter than `written` (answers the state counts were lost),
    /// it holds answers no state accounts for (`written` is `None`), its first line is not
    /// `header` (the answers of another run or other options), or it cannot be read or
    /// written.
    pub fn continued(path: impl AsRef<Path>, header: &str, written: Option<u64>) -> Result<(Self, CutAnswers)> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::Io { path: path.clone(), source };
        let format = |why: String| Error::Format { path: path.clone(), why };
        let len = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(io(source)),
        };
        match written {
            None if len > 0 => {
                return Err(format(format!(
                    "holds {len} bytes of answers that no stream state accounts for (--state FILE keeps the length \
                     of the answers it was written after): name another file, or remove this one to start afresh"
                )))
            }
            Some(kept) if kept > len => {
                return Err(format(format!(
                    "holds {len} bytes, but the stream state was written after {kept}: answers were lost since; \
                     restore the file, or remove it and the state to start afresh"
                )))
            }
            _ => {}
        }
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        let mut cut = CutAnswers::default();
        if written.is_some_and(|kept| kept > 0) {
            let mut first = String::new();
            BufReader::new(&file).read_line(&mut first).map_err(io)?;
            let first = first.trim_end_matches(['\n', '\r']);
            if first != header {
                return Err(format(format!(
                    "its header `{first}` is not this stream's `{header}`: the answers of another run or other \
                     options (--horizon, --samples, --flag); name another file"
                )));
            }
        }
        let kept = written.unwrap_or(0);
        if kept < len {
            let mut tail = Vec::new();
            file.seek(SeekFrom::Start(kept)).map_err(io)?;
            file.read_to_end(&mut tail).map_err(io)?;
            cut = CutAnswers { lines: tail.iter().filter(|&&b| b == b'\n').count(), bytes: len - kept };
            file.set_len(kept).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        file.seek(SeekFrom::Start(kept)).map_err(io)?;
        let mut answers = AnswerFile { path, out: BufWriter::new(file), len: kept, temp: TemporaryFile(None) };
        if kept == 0 {
            answers.write_line(header)?;
        }
        Ok((answers, cut))
    }

    /// One feed's answers into `path`, starting with `header`, through a temporary file
    /// renamed onto it by [`AnswerFile::close`].
    ///
    /// # Errors
    /// The temporary file cannot be created beside `path`.
    pub fn replaced(path: impl AsRef<Path>, header: &str) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let temp = crate::io::safetensors_io::temporary_beside(&path);
        let file = File::create(&temp).map_err(|source| Error::Io { path: temp.clone(), source })?;
        let mut answers = AnswerFile { path, out: BufWriter::new(file), len: 0, temp: TemporaryFile(Some(temp)) };
        answers.write_line(header)?;
        Ok(answers)
    }

    /// Appends `line` and a newline, handed to the file at once (a reader following the
    /// file sees each answer as it is written).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write_line(&mut self, line: &str) -> Result<()> {
        let io = |source| Error::Io { path: self.path.clone(), source };
        self.out.write_all(line.as_bytes()).and_then(|()| self.out.write_all(b"\n")).map_err(io)?;
        self.out.flush().map_err(io)?;
        self.len += line.len() as u64 + 1;
        Ok(())
    }

    /// Everything written so far on the disk: its length in bytes, for the state saved next.
    ///
    /// # Errors
    /// The file cannot be flushed or synced.
    pub fn commit(&mut self) -> Result<u64> {
        let io = |source| Error::Io { path: self.path.clone(), source };
        self.out.flush().map_err(io)?;
        self.out.get_ref().sync_data().map_err(io)?;
        Ok(self.len)
    }

    /// Committed, and where it was [replaced](AnswerFile::replaced), renamed onto its path.
    ///
    /// # Errors
    /// As [`AnswerFile::commit`]; the rename fails (the temporary file is then removed).
    pub fn close(mut self) -> Result<()> {
        self.commit()?;
        let AnswerFile { path, out, mut temp, .. } = self;
        drop(out);
        match temp.0.take() {
            // a failed rename leaves the temporary file to `temp`'s drop
            Some(from) => std::fs::rename(&from, &path).map_err(|source| {
                temp.0 = Some(from);
                Error::Io { path, source }
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    /// A service killed after its state (two answers) and a third answer, restarted from
    /// that state: the third is cut and written again; the file holds each once.
    #[test]
    fn a_continued_file_is_cut_back_to_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answers.csv");
        let (mut first, cut) = AnswerFile::continued(&path, "time,x", None).unwrap();
        assert_eq!(cut, CutAnswers::default());
        first.write_line("1,0.5").unwrap();
        first.write_line("2,0.25").unwrap();
        let kept = first.commit().unwrap();
        assert_eq!(kept, read(&path).len() as u64);
        first.write_line("3,0.125").unwrap();
        drop(first);
        assert_eq!(read(&path), "time,x\n1,0.5\n2,0.25\n3,0.125\n");

        let (mut again, cut) = AnswerFile::continued(&path, "time,x", Some(kept)).unwrap();
        assert_eq!(cut, CutAnswers { lines: 1, bytes: 8 });
        again.write_line("3,1").unwrap();
        again.close().unwrap();
        assert_eq!(read(&path), "time,x\n1,0.5\n2,0.25\n3,1\n");
    }

    #[test]
    fn a_continued_file_that_does_not_fit_its_state_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answers.csv");
        std::fs::write(&path, "time,x\n1,0.5\n").unwrap();
        let why = |written| AnswerFile::continued(&path, "time,x", written).err().unwrap().to_string();
        assert!(why(None).contains("answers.csv: holds 13 bytes of answers that no stream state accounts for"));
        assert!(why(Some(14)).contains("answers.csv: holds 13 bytes, but the stream state was written after 14"));
        let other = AnswerFile::continued(&path, "time,y", Some(7)).err().unwrap().to_string();
        assert!(other.contains("its header `time,x` is not this stream's `time,y`"), "{other}");
        assert_eq!(read(&path), "time,x\n1,0.5\n", "a refused file is left as it was");
        let gone = dir.path().join("gone.csv");
        let why = AnswerFile::continued(&gone, "time,x", Some(13)).err().unwrap().to_string();
        assert!(why.contains("gone.csv: holds 0 bytes, but the stream state was written after 13"), "{why}");
        assert!(!gone.exists(), "nothing created");
    }

    /// A replaced file appears whole when closed; a stream stopped before leaves the old
    /// one and no temporary file.
    #[test]
    fn a_replaced_file_appears_only_when_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answers.csv");
        std::fs::write(&path, "old\n").unwrap();
        let mut stopped = AnswerFile::replaced(&path, "time,x").unwrap();
        stopped.write_line("1,0.5").unwrap();
        drop(stopped);
        assert_eq!(read(&path), "old\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
        let mut whole = AnswerFile::replaced(&path, "time,x").unwrap();
        whole.write_line("1,0.5").unwrap();
        whole.close().unwrap();
        assert_eq!(read(&path), "time,x\n1,0.5\n");
    }
}
