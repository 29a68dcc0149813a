//! Fetching the Omniglot zips over HTTPS into a folder, by default the per-user cache.

use std::fs;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::image_set::ImageSet;
use super::loader::{Omniglot, Part};
use super::location::cache_dir;
use crate::{Error, Result};

/// The official repository's folder of zips (brendenlake/omniglot, `python/`).
pub const OFFICIAL_URL: &str =
    "https://raw.githubusercontent.com/brendenlake/omniglot/master/python";

/// Most bytes a part's zip may have (the largest official one, `images_background.zip`,
/// has 9.5 MB): a server that sends more is refused before the disk fills.
const MAX_ZIP_BYTES: u64 = 64 << 20;

/// Downloads the Omniglot parts asked for into `dir` from the official repository, with a
/// progress bar: see [`DownloadConfig::download`]. [`Omniglot::find`] looks in
/// [`cache_dir`] by default, which [`download_to_cache`] fills.
///
/// ```no_run
/// use siamese::data::{Omniglot, Part, download};
///
/// let omniglot = download("data/omniglot", &[Part::Background, Part::Evaluation])?;
/// let background = omniglot.background()?;
/// # Ok::<(), siamese::Error>(())
/// ```
///
/// # Errors
/// As [`DownloadConfig::download`].
pub fn download(dir: impl AsRef<Path>, parts: &[Part]) -> Result<Omniglot> {
    DownloadConfig::new().download(dir, parts)
}

/// Downloads the parts asked for into the per-user [`cache_dir`], where
/// [`Omniglot::find`] looks when neither `--data` nor `$OMNIGLOT_DIR` is given.
///
/// # Errors
/// [`Error::NoData`] when the platform has no cache folder, else as
/// [`DownloadConfig::download`].
pub fn download_to_cache(parts: &[Part]) -> Result<Omniglot> {
    let dir = cache_dir().ok_or_else(|| Error::NoData {
        looked: "this platform has no cache folder to download into; pass a folder".into(),
    })?;
    download(dir, parts)
}

/// Where and how [`DownloadConfig::download`] fetches the Omniglot zips.
#[derive(Clone, Debug)]
pub struct DownloadConfig {
    /// Address of the folder that holds `<part>.zip`, without a trailing slash (default:
    /// [`OFFICIAL_URL`]; a mirror, or a local server in tests).
    pub base_url: String,
    /// Show a progress bar with bytes, rate and time left on stderr (default: on; it
    /// stays hidden when stderr is not a terminal).
    pub progress: bool,
    /// Longest wait for a connection, and for each read of the body (default: 30 s).
    pub timeout: Duration,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl DownloadConfig {
    /// The official repository, a progress bar, 30 s timeouts.
    pub fn new() -> Self {
        Self {
            base_url: OFFICIAL_URL.into(),
            progress: true,
            timeout: Duration::from_secs(30),
        }
    }

    /// Fetches from `base_url` instead (the folder holding `<part>.zip`).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into().trim_end_matches('/').to_string();
        self
    }

    /// Shows a progress bar or not.
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// Sets the connection and read timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The address of `part`'s zip.
    pub fn url(&self, part: Part) -> String {
        format!("{}/{}.zip", self.base_url, part.name())
    }

    /// Downloads each of `parts` that `dir` does not hold yet (as `<part>.zip` or its
    /// extracted folder), creating `dir` if needed, and opens `dir`. A second call finds
    /// the files and downloads nothing.
    ///
    /// Each zip is written to a temporary file in `dir`, checked, and only then renamed to
    /// `<part>.zip`: an interrupted or failed download never leaves a file that looks
    /// complete. The check opens the archive with the crate's own loader and compares the
    /// official counts of alphabets, characters and images ([`Part::check`]), and compares
    /// the SHA-256 where the official file's is known (the two small background sets).
    ///
    /// # Errors
    /// [`Error::Download`] naming the address for a network failure (no route, a refused
    /// connection, a timeout), an HTTP error status, a body cut short or too large, and a
    /// file that fails its check (the error names the file, which is removed);
    /// [`Error::Io`] when `dir` cannot be written.
    pub fn download(&self, dir: impl AsRef<Path>, parts: &[Part]) -> Result<Omniglot> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_connect(Some(self.timeout))
                .timeout_recv_response(Some(self.timeout))
                .timeout_per_read(Some(self.timeout))
                .build(),
        );
        for &part in parts {
            let target = dir.join(format!("{}.zip", part.name()));
            if target.is_file() || dir.join(part.name()).is_dir() {
                continue;
            }
            self.fetch(&agent, part, &target)?;
        }
        Omniglot::open(dir)
    }

    /// Downloads `part` to a temporary file beside `target`, checks it, renames it.
    fn fetch(&self, agent: &ureq::Agent, part: Part, target: &Path) -> Result<()> {
        let url = self.url(part);
        let failed = |reason: String| Error::Download {
            url: url.clone(),
            reason,
        };
        let dir = target.parent().unwrap_or(Path::new("."));
        let mut temporary = tempfile::Builder::new()
            .prefix(&format!(".{}.zip.", part.name()))
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;

        let mut response = agent.get(&url).call().map_err(|e| failed(describe(e)))?;
        let expected = response.body().content_length();
        if let Some(length) = expected.filter(|&n| n > MAX_ZIP_BYTES) {
            return Err(failed(format!(
                "the server announces {length} bytes, more than the {MAX_ZIP_BYTES} a part may have"
            )));
        }
        let bar = if self.progress {
            ProgressBar::new(expected.unwrap_or(0))
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} (eta {eta})",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(format!("{}.zip", part.name()));

        let mut body = response
            .body_mut()
            .with_config()
            .limit(MAX_ZIP_BYTES)
            .reader();
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        let mut buffer = vec![0u8; 64 << 10];
        loop {
            let n = body
                .read(&mut buffer)
                .map_err(|e| failed(format!("the body broke off after {received} bytes: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            temporary
                .write_all(&buffer[..n])
                .map_err(|e| Error::io(temporary.path(), e))?;
            received += n as u64;
            bar.inc(n as u64);
        }
        bar.finish_and_clear();
        if let Some(length) = expected.filter(|&n| n != received) {
            return Err(failed(format!(
                "the body was cut short: {received} of {length} bytes"
            )));
        }

        let file = temporary.as_file_mut();
        file.flush().map_err(|e| Error::io(target, e))?;
        file.sync_all().map_err(|e| Error::io(target, e))?;
        let checked = |reason: String| {
            failed(format!(
                "{} failed its check and was not kept: {reason}",
                target.display()
            ))
        };
        if let Some(sum) = official_sha256(part) {
            let found = hex(&hasher.finalize());
            if found != sum {
                return Err(checked(format!("SHA-256 {found}, expected {sum}")));
            }
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(target, e))?;
        let set = ImageSet::from_zip(BufReader::new(&*file), target)
            .map_err(|e| checked(e.to_string()))?;
        part.check(&set, target)
            .map_err(|e| checked(e.to_string()))?;

        temporary
            .persist(target)
            .map_err(|e| Error::io(target, e.error))?;
        Ok(())
    }
}

/// The SHA-256 of the official zip, where this crate knows it: the two small background
/// sets. The full sets are checked by their counts alone.
fn official_sha256(part: Part) -> Option<&'static str> {
    match part {
        Part::BackgroundSmall1 => {
            Some("f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4")
        }
        Part::BackgroundSmall2 => {
            Some("3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f")
        }
        Part::Background | Part::Evaluation => None,
    }
}

/// An HTTP client error in words a user can act on.
fn describe(error: ureq::Error) -> String {
    match error {
        ureq::Error::StatusCode(code) => format!("the server answered HTTP {code}"),
        ureq::Error::HostNotFound => "the host was not found (no network?)".into(),
        ureq::Error::ConnectionFailed => "the connection failed (no route?)".into(),
        ureq::Error::Timeout(what) => format!("timed out ({what})"),
        ureq::Error::Io(e) => format!("network error: {e}"),
        other => other.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn zip_path(dir: &Path, part: Part) -> PathBuf {
        dir.join(format!("{}.zip", part.name()))
    }

    #[test]
    fn addresses_are_the_official_folder_and_the_part_name() {
        assert_eq!(
            DownloadConfig::new().url(Part::Background),
            "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/images_background.zip"
        );
        assert_eq!(
            DownloadConfig::new()
                .with_base_url("http://127.0.0.1:8000/mirror/")
                .url(Part::BackgroundSmall2),
            "http://127.0.0.1:8000/mirror/images_background_small2.zip"
        );
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_part_already_there_is_not_fetched() {
        // The address is unreachable: any request would fail.
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("images_background")).unwrap();
        fs::write(zip_path(dir.path(), Part::Evaluation), b"kept as it is").unwrap();
        let config = DownloadConfig::new()
            .with_base_url("http://127.0.0.1:9")
            .with_progress(false);
        config
            .download(dir.path(), &[Part::Background, Part::Evaluation])
            .unwrap();
        assert_eq!(
            fs::read(zip_path(dir.path(), Part::Evaluation)).unwrap(),
            b"kept as it is"
        );
    }
}
