//! What the examples share.

use std::process::ExitCode;

/// The exit of an example's `run`: the error's message (it names the file or value at
/// fault) rather than the `Debug` form that `main` returning `Result` prints.
pub fn exit(result: siamese::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An example's output folder, checked before any work: an existing file there, or a
/// folder that cannot be written, fails the run at once rather than after its results.
/// A folder made here is removed again if the run ends with it still empty.
#[allow(dead_code)] // not every example writes a folder
pub struct OutDir {
    path: std::path::PathBuf,
    created: bool,
}

#[allow(dead_code)]
impl OutDir {
    /// Creates `path` (and its parents) if missing, checks that a file can be written in
    /// it, and that none of the `outputs` the run will write there (a name ending in `/` is
    /// a folder) is in the way: an `episodes.png/` folder failed a run only at its end.
    ///
    /// # Errors
    /// [`siamese::Error::InvalidArgument`] when `path` is a file or an output's name is
    /// taken by something else than what the run writes;
    /// [`siamese::Error::Io`] naming the folder when it cannot be made or written in.
    pub fn prepare(path: &std::path::Path, outputs: &[&str]) -> siamese::Result<Self> {
        if path.exists() && !path.is_dir() {
            return Err(siamese::Error::invalid(
                "out",
                format!("{} is a file; --out names a folder", path.display()),
            ));
        }
        for output in outputs {
            let folder = output.ends_with('/');
            let target = path.join(output.trim_end_matches('/'));
            let taken = match std::fs::metadata(&target) {
                Ok(meta) if folder => !meta.is_dir(),
                Ok(meta) => !meta.is_file(),
                Err(_) => false,
            };
            if taken {
                let what = if folder { "a folder" } else { "a file" };
                return Err(siamese::Error::invalid(
                    "out",
                    format!(
                        "{} is in the way: the run writes {what} there",
                        target.display()
                    ),
                ));
            }
        }
        let created = !path.exists();
        std::fs::create_dir_all(path).map_err(|e| siamese::Error::io(path, e))?;
        let out = Self {
            path: path.to_path_buf(),
            created,
        };
        let probe = path.join(".siamese-write-check");
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| siamese::Error::io(path, e))?;
        Ok(out)
    }

    /// The folder.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if self.created {
            // Fails, leaving the folder, unless it is empty.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--out FILE` used to fail with "File exists (os error 17)", and a failed run left
    /// the empty folder it had made.
    #[test]
    fn a_file_is_refused_and_a_folder_made_for_a_failed_run_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("results.txt");
        std::fs::write(&file, "").unwrap();
        let message = OutDir::prepare(&file, &[]).err().unwrap().to_string();
        assert!(message.contains("results.txt is a file"), "{message}");

        let made = dir.path().join("run/out");
        drop(OutDir::prepare(&made, &[]).unwrap());
        assert!(
            !made.exists(),
            "an empty folder made for a failed run stays"
        );

        let written = OutDir::prepare(&made, &["episodes.png"]).unwrap();
        std::fs::write(written.path().join("episodes.png"), "").unwrap();
        drop(written);
        assert!(made.join("episodes.png").exists());

        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        drop(OutDir::prepare(&existing, &[]).unwrap());
        assert!(
            existing.is_dir(),
            "a folder the user had is not ours to remove"
        );
    }

    /// `--out` holding a folder named like an output file (`episodes.png/`) failed only
    /// after the whole evaluation.
    #[test]
    fn an_output_name_taken_by_the_other_kind_is_refused_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("episodes.png")).unwrap();
        std::fs::write(dir.path().join("training"), "").unwrap();
        let message = OutDir::prepare(dir.path(), &["episodes.png"])
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("episodes.png is in the way"), "{message}");
        let message = OutDir::prepare(dir.path(), &["training/"])
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("training is in the way"), "{message}");
        std::fs::write(dir.path().join("model.bpk"), "").unwrap();
        assert!(OutDir::prepare(dir.path(), &["model.bpk", "new.png", "runs/"]).is_ok());
    }
}
