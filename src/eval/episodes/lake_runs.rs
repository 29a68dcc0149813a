//! Lake's 20 official runs of 20-way one-shot classification (`all_runs.zip`).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::DynamicImage;

use super::episode::Episode;
use crate::data::{OMNIGLOT_PNG, decode_png};
use crate::io::{Archive, FileKind};
use crate::{Error, Result};

/// Name of the file in each run folder that pairs test items with training images.
pub(crate) const CLASS_LABELS: &str = "class_labels.txt";

/// The official `all_runs.zip` (353 KB, MIT licence), shipped in `assets/omniglot/`.
const OFFICIAL_RUNS_ZIP: &[u8] = include_bytes!("../../../assets/omniglot/all_runs.zip");

/// Runs in the official set, and test items (and classes) in each.
const OFFICIAL_RUNS: usize = 20;
const OFFICIAL_SIZE: usize = 20;

/// A `class_labels.txt`: the official ones have under 1 KB.
const LABELS_FILE: FileKind = FileKind::new("a class_labels.txt", 1 << 20);

/// The official one-shot runs of Lake, Salakhutdinov and Tenenbaum (2015): in each run,
/// 20 test items ("queries") are classified against 20 training images (one per class),
/// as `runNN/class_labels.txt` pairs them.
///
/// Each run is one [`Episode`]: the supports are the training images in sorted file order
/// (`class01` first), the queries the test items in sorted file order, as the official
/// `demo_classification.py` orders them. Class names are the training files
/// (`run01/training/class05.png`).
///
/// ```no_run
/// use siamese::eval::{EvaluatorConfig, LakeRuns, ModifiedHausdorff};
///
/// let runs = LakeRuns::open("../shared/omniglot/all_runs.zip")?;
/// assert_eq!(runs.episodes().len(), 20);
/// let result = EvaluatorConfig::new().init()?.evaluate(&ModifiedHausdorff, runs.episodes())?;
/// println!("{result}"); // 61.2% right: the demo's 38.8% error
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct LakeRuns {
    names: Vec<String>,
    episodes: Vec<Episode>,
}

impl LakeRuns {
    /// Reads every run folder (`runNN`, each with a `class_labels.txt`) of `path`, which is
    /// one of: `all_runs.zip` (the official archive), its extracted folder (both with or
    /// without a top folder above `run01`, `run02`, ...), or a folder holding either of those as
    /// `all_runs.zip` or `all_runs/` (such as the Omniglot data folder).
    ///
    /// The runs must be the official ones' shape: `run01` to `run20`, each with 20 test
    /// items and 20 classes. [`LakeRuns::open_partial`] reads other sets of runs.
    ///
    /// # Errors
    /// [`Error::Io`] when `path` cannot be read, [`Error::Layout`] naming the file when
    /// there is no run, a run is missing or has other than 20 trials or classes, runs lie
    /// under more than one folder, a `class_labels.txt` is malformed or names an image
    /// outside its run's `test/` or `training/` folder or one that is not there,
    /// [`Error::TooLarge`] naming a file past its bound (1 MiB for a `class_labels.txt`,
    /// [`MAX_PNG_BYTES`](crate::data::MAX_PNG_BYTES) for an image), and [`Error::Image`]
    /// naming the image that does not decode.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::read(Source::open(path.as_ref())?, true)
    }

    /// Reads runs laid out as the official ones, in any number and of any size (a subset of
    /// the official runs, or runs of one's own), as [`LakeRuns::open`] otherwise does.
    ///
    /// # Errors
    /// As [`LakeRuns::open`], but for the official shape.
    pub fn open_partial(path: impl AsRef<Path>) -> Result<Self> {
        Self::read(Source::open(path.as_ref())?, false)
    }

    /// The official runs, from the copy of `all_runs.zip` built into the crate: no data
    /// folder needed. They are the same episodes as [`LakeRuns::open`] reads from the
    /// official file (a test compares them).
    ///
    /// ```
    /// use siamese::eval::LakeRuns;
    ///
    /// let runs = LakeRuns::official()?;
    /// assert_eq!(runs.names().len(), 20);
    /// assert!(runs.episodes().iter().all(|run| run.n_way() == 20 && run.queries().len() == 20));
    /// # Ok::<(), siamese::Error>(())
    /// ```
    ///
    /// # Errors
    /// None in practice: the archive is checked by the crate's tests; a failure would be
    /// reported as for [`LakeRuns::open`] with the path `all_runs.zip (built in)`.
    pub fn official() -> Result<Self> {
        Self::read(
            Source::new(Archive::zip(
                Cursor::new(OFFICIAL_RUNS_ZIP),
                PathBuf::from("all_runs.zip (built in)"),
            )?)?,
            true,
        )
    }

    /// Reads every run of `source`; with `official`, refuses any other shape than the
    /// official 20 runs × 20 trials.
    fn read(mut source: Source, official: bool) -> Result<Self> {
        let runs = std::mem::take(&mut source.runs);
        if runs.is_empty() {
            return Err(layout(
                source.display(""),
                format!("no run folder (runNN/{CLASS_LABELS}) found"),
            ));
        }
        if official {
            let missing: Vec<String> = (1..=OFFICIAL_RUNS)
                .map(|n| format!("run{n:02}"))
                .filter(|name| !runs.contains(name))
                .collect();
            let extra: Vec<&String> = runs.iter().filter(|name| !is_official_run(name)).collect();
            if !missing.is_empty() || !extra.is_empty() {
                return Err(layout(
                    source.display(""),
                    format!(
                        "the official runs are run01 to run{OFFICIAL_RUNS:02}; missing: [{}], \
                         not official: [{}] (LakeRuns::open_partial reads other sets)",
                        missing.join(", "),
                        extra
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        let mut episodes = Vec::with_capacity(runs.len());
        for run in &runs {
            let episode = read_run(&mut source, run)?;
            if official && (episode.n_queries(), episode.n_way()) != (OFFICIAL_SIZE, OFFICIAL_SIZE)
            {
                return Err(layout(
                    source.display(&format!("{run}/{CLASS_LABELS}")),
                    format!(
                        "lists {} test items of {} classes; an official run has \
                         {OFFICIAL_SIZE} of {OFFICIAL_SIZE}",
                        episode.n_queries(),
                        episode.n_way()
                    ),
                ));
            }
            episodes.push(episode);
        }
        Ok(Self {
            names: runs,
            episodes,
        })
    }

    /// The runs as episodes, in run order.
    pub fn episodes(&self) -> &[Episode] {
        &self.episodes
    }

    /// The runs as episodes, in run order.
    pub fn into_episodes(self) -> Vec<Episode> {
        self.episodes
    }

    /// Names of the runs (`run01`, ...), in the order of [`LakeRuns::episodes`].
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

fn layout(path: PathBuf, reason: impl Into<String>) -> Error {
    Error::Layout {
        path,
        reason: reason.into(),
    }
}

/// Reads one run: parses its labels, then decodes its images.
fn read_run(source: &mut Source, run: &str) -> Result<Episode> {
    let labels_name = format!("{run}/{CLASS_LABELS}");
    let labels_path = source.display(&labels_name);
    let text = source
        .read(&labels_name, LABELS_FILE)?
        .ok_or_else(|| layout(labels_path.clone(), "missing"))?;
    let text =
        String::from_utf8(text).map_err(|_| layout(labels_path.clone(), "is not UTF-8 text"))?;

    let mut pairs: Vec<(String, String)> = Vec::new();
    for (number, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |why: &str| {
            layout(
                labels_path.clone(),
                format!("line {}: {why}: {:?}", number + 1, line.trim()),
            )
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [test, train] = fields[..] else {
            return Err(bad(
                "expected two paths, `runNN/test/itemNN.png runNN/training/classNN.png`",
            ));
        };
        if !is_inside(test, run, "test") {
            return Err(bad(&format!("the test item is not in {run}/test/")));
        }
        if !is_inside(train, run, "training") {
            return Err(bad(&format!(
                "the training image is not in {run}/training/"
            )));
        }
        if pairs.iter().any(|(t, _)| t == test) {
            return Err(bad(&format!("{test} is listed twice")));
        }
        pairs.push((test.to_string(), train.to_string()));
    }
    if pairs.is_empty() {
        return Err(layout(labels_path, "has no test item"));
    }

    pairs.sort();
    let mut classes: Vec<String> = pairs.iter().map(|(_, train)| train.clone()).collect();
    classes.sort();
    classes.dedup();
    let supports = classes
        .iter()
        .map(|name| Ok(vec![source.image(name, &labels_path)?]))
        .collect::<Result<Vec<_>>>()?;
    let queries = pairs
        .iter()
        .map(|(test, _)| source.image(test, &labels_path))
        .collect::<Result<Vec<_>>>()?;
    let labels = pairs
        .iter()
        .map(|(_, train)| classes.binary_search(train).expect("every class is listed"))
        .collect();
    Episode::new(supports, queries, labels)?.with_class_names(classes)
}

/// Where the runs are read from: an archive and the folder inside it that holds them.
struct Source {
    archive: Archive<'static>,
    /// `""`, or the folder holding the runs followed by `/` (`"all_runs/"`).
    prefix: String,
    /// The run folders (`runNN`), sorted.
    runs: Vec<String>,
}

impl Source {
    /// The runs at `path`: a zip, a folder of runs, or a folder holding either as
    /// `all_runs.zip` or `all_runs/`.
    fn open(path: &Path) -> Result<Self> {
        let metadata = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mut path = path.to_path_buf();
        if metadata.is_dir() {
            if path.join("all_runs.zip").is_file() {
                path.push("all_runs.zip");
            } else if path.join("all_runs").is_dir() {
                path.push("all_runs");
            }
        }
        Self::new(Archive::open(&path)?)
    }

    /// The runs of `archive`: the `runNN` folders at its top, or under the one folder
    /// that holds every `runNN/class_labels.txt`.
    fn new(archive: Archive<'static>) -> Result<Self> {
        // run01/class_labels.txt, or all_runs/run01/class_labels.txt: three levels.
        let entries = archive.entries(3)?;
        let mut prefixes: Vec<String> = entries
            .iter()
            .filter(|entry| !entry.is_dir)
            .filter_map(|entry| {
                let run = entry.name.strip_suffix(CLASS_LABELS)?.strip_suffix('/')?;
                let (folder, run) = run.rsplit_once('/').unwrap_or(("", run));
                is_run_name(run).then(|| match folder {
                    "" => String::new(),
                    folder => format!("{folder}/"),
                })
            })
            .collect();
        prefixes.sort();
        prefixes.dedup();
        if prefixes.len() > 1 {
            return Err(layout(
                archive.path().to_path_buf(),
                format!(
                    "runs lie under more than one folder: {}",
                    prefixes
                        .iter()
                        .map(|p| if p.is_empty() { "(top)" } else { p.as_str() })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let prefix = prefixes.pop().unwrap_or_default();
        let runs = entries
            .into_iter()
            .filter(|entry| entry.is_dir)
            .filter_map(|entry| {
                let run = entry.name.strip_prefix(prefix.as_str())?;
                (!run.contains('/') && is_run_name(run)).then(|| run.to_string())
            })
            .collect();
        Ok(Source {
            archive,
            prefix,
            runs,
        })
    }

    /// How `name` (relative to the runs' folder) is shown in errors.
    fn display(&self, name: &str) -> PathBuf {
        self.archive.shown(&format!("{}{name}", self.prefix))
    }

    /// The bytes of `name`, or `None` when it does not exist.
    fn read(&mut self, name: &str, kind: FileKind) -> Result<Option<Vec<u8>>> {
        self.archive.read(&format!("{}{name}", self.prefix), kind)
    }

    /// Decodes the image `name`, which `labels` lists.
    fn image(&mut self, name: &str, labels: &Path) -> Result<Arc<DynamicImage>> {
        let shown = self.display(name);
        let bytes = self.read(name, OMNIGLOT_PNG)?.ok_or_else(|| {
            layout(
                shown.clone(),
                format!("missing, but {} lists it", labels.display()),
            )
        })?;
        Ok(Arc::new(decode_png(&bytes, shown)?.into()))
    }
}

/// Whether `path` is `<run>/<folder>/<file>`: three plain components, no `.` or `..`, no
/// absolute path, no backslash, so that it cannot name a file outside the run.
fn is_inside(path: &str, run: &str, folder: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    matches!(parts[..], [r, f, file] if r == run && f == folder
        && !file.is_empty() && file != "." && file != ".." && !file.contains('\\'))
}

/// `run01` to `run20`.
fn is_official_run(name: &str) -> bool {
    (1..=OFFICIAL_RUNS).any(|n| name == format!("run{n:02}"))
}

/// `run` followed by digits.
fn is_run_name(name: &str) -> bool {
    name.strip_prefix("run")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::{Cursor, Read, Write};

    use image::{GrayImage, ImageFormat, Luma};
    use zip::ZipArchive;
    use zip::write::SimpleFileOptions;

    use super::*;

    /// The built-in copy is the official file, byte for byte (the SHA-256 that the data
    /// set's distribution lists), and reads as the same runs as that file on disk.
    #[test]
    fn official_runs_are_the_official_file() {
        use sha2::{Digest, Sha256};
        let sum: String = Sha256::digest(OFFICIAL_RUNS_ZIP)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            sum,
            "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325"
        );

        let built_in = LakeRuns::official().unwrap();
        let on_disk =
            LakeRuns::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/omniglot")).unwrap();
        assert_eq!(built_in.names(), on_disk.names());
        assert_eq!(built_in.names().len(), 20);
        for (a, b) in built_in.episodes().iter().zip(on_disk.episodes()) {
            assert_eq!((a.n_way(), a.n_queries()), (20, 20));
            assert_eq!(a.labels(), b.labels());
            assert_eq!(a.class_names(), b.class_names());
            assert_eq!(a.supports(), b.supports());
            assert_eq!(a.queries(), b.queries());
        }
    }

    /// An Omniglot-style PNG (black ink on white) with one ink pixel at `(x, 0)`.
    fn png(x: u32) -> Vec<u8> {
        let mut page = GrayImage::from_pixel(105, 105, Luma([255]));
        page.put_pixel(x, 0, Luma([0]));
        let mut out = Cursor::new(Vec::new());
        page.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    /// Two runs of three classes. Training image `classK` has ink at `x = 10 * run + K`;
    /// test item `itemJ` shows class `ANSWERS[J - 1]` (its ink at the same place).
    const ANSWERS: [usize; 3] = [3, 1, 3];

    fn files() -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for run in 1..=2u32 {
            let mut labels = String::new();
            // Lines in a shuffled order: the item order comes from the file names.
            for item in [2usize, 3, 1] {
                let class = ANSWERS[item - 1];
                labels += &format!(
                    "run{run:02}/test/item{item:02}.png run{run:02}/training/class{class:02}.png\n"
                );
                files.push((
                    format!("run{run:02}/test/item{item:02}.png"),
                    png(10 * run + class as u32),
                ));
            }
            for class in 1..=3u32 {
                files.push((
                    format!("run{run:02}/training/class{class:02}.png"),
                    png(10 * run + class),
                ));
            }
            files.push((format!("run{run:02}/{CLASS_LABELS}"), labels.into_bytes()));
        }
        files
    }

    fn write_folder(root: &Path, files: &[(String, Vec<u8>)]) {
        for (name, bytes) in files {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }

    fn write_zip(path: &Path, prefix: &str, files: &[(String, Vec<u8>)]) {
        let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
        for (name, bytes) in files {
            zip.start_file(
                format!("{prefix}{name}"),
                SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
            )
            .unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }

    /// The x of the ink pixel of a decoded (ink-high) image.
    fn ink_x(image: &DynamicImage) -> u32 {
        let image = image.as_luma8().unwrap();
        image
            .enumerate_pixels()
            .find(|(_, _, p)| p.0[0] == 255)
            .unwrap()
            .0
    }

    fn check(runs: &LakeRuns) {
        assert_eq!(runs.names(), ["run01", "run02"]);
        for (r, episode) in runs.episodes().iter().enumerate() {
            let run = 10 * (r as u32 + 1);
            assert_eq!(
                (episode.n_way(), episode.k_shot(), episode.n_queries()),
                (2, 1, 3)
            );
            // Only classes 1 and 3 are answers: the supports are those, sorted.
            assert_eq!(
                episode.class_names(),
                [
                    format!("run0{}/training/class01.png", r + 1),
                    format!("run0{}/training/class03.png", r + 1)
                ]
            );
            assert_eq!(episode.labels(), [1, 0, 1]);
            for (query, &label) in episode.queries().iter().zip(episode.labels()) {
                assert_eq!(ink_x(query), ink_x(&episode.supports()[label][0]));
            }
            assert_eq!(ink_x(&episode.supports()[0][0]), run + 1);
        }
    }

    #[test]
    fn reads_zips_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        let files = files();
        write_zip(&dir.path().join("flat.zip"), "", &files);
        check(&LakeRuns::open_partial(dir.path().join("flat.zip")).unwrap());
        write_zip(&dir.path().join("nested.zip"), "all_runs/", &files);
        check(&LakeRuns::open_partial(dir.path().join("nested.zip")).unwrap());
        write_folder(&dir.path().join("extracted"), &files);
        check(&LakeRuns::open_partial(dir.path().join("extracted")).unwrap());
        // An extracted folder with a top folder of another name: read as the zip is.
        let nested: Vec<_> = files
            .iter()
            .map(|(name, bytes)| (format!("my_runs/{name}"), bytes.clone()))
            .collect();
        write_folder(&dir.path().join("nested"), &nested);
        check(&LakeRuns::open_partial(dir.path().join("nested")).unwrap());
        // A data folder holding all_runs.zip.
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        write_zip(&data.join("all_runs.zip"), "", &files);
        check(&LakeRuns::open_partial(&data).unwrap());
    }

    #[test]
    fn a_missing_image_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = files()
            .into_iter()
            .filter(|(name, _)| name != "run02/test/item03.png")
            .collect();
        write_zip(&dir.path().join("all_runs.zip"), "", &files);
        let err = LakeRuns::open_partial(dir.path().join("all_runs.zip")).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::Layout { .. }), "{err:?}");
        assert!(
            message.contains("all_runs.zip/run02/test/item03.png"),
            "{message}"
        );
        assert!(
            message.contains("run02/class_labels.txt lists it"),
            "{message}"
        );
    }

    /// A run folder without its labels file is named, in a zip as in a folder.
    #[test]
    fn a_run_without_labels_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = files()
            .into_iter()
            .filter(|(name, _)| name != &format!("run02/{CLASS_LABELS}"))
            .collect();
        write_zip(&dir.path().join("all_runs.zip"), "", &files);
        write_folder(&dir.path().join("extracted"), &files);
        for path in ["all_runs.zip", "extracted"] {
            let message = LakeRuns::open_partial(dir.path().join(path))
                .unwrap_err()
                .to_string();
            assert!(
                message.contains(&format!("{path}/run02/class_labels.txt"))
                    && message.contains("missing"),
                "{message}"
            );
        }
    }

    #[test]
    fn malformed_labels_are_named_with_the_line() {
        let cases = [
            ("run01/test/item01.png\n", "line 1: expected two paths"),
            (
                "run01/test/item01.png run01/training/class01.png extra\n",
                "line 1: expected two paths",
            ),
            (
                "\nrun01/test/item01.png run02/training/class01.png\n",
                "line 2: the training image is not in run01/training/",
            ),
            (
                "run01/training/class01.png run01/training/class01.png\n",
                "the test item is not in run01/test/",
            ),
            (
                "run01/test/item01.png run01/training/class01.png\nrun01/test/item01.png run01/training/class02.png\n",
                "line 2: run01/test/item01.png is listed twice",
            ),
            ("\n\n", "has no test item"),
        ];
        for (labels, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let mut files = files();
            files.retain(|(name, _)| !name.ends_with(CLASS_LABELS) || name.starts_with("run02"));
            files.push((format!("run01/{CLASS_LABELS}"), labels.as_bytes().to_vec()));
            write_folder(dir.path(), &files);
            let message = LakeRuns::open_partial(dir.path()).unwrap_err().to_string();
            assert!(message.contains("run01/class_labels.txt"), "{message}");
            assert!(message.contains(expected), "{labels:?}: {message}");
        }
    }

    #[test]
    fn no_runs_and_bad_archives_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let message = LakeRuns::open_partial(dir.path()).unwrap_err().to_string();
        assert!(message.contains("no run folder"), "{message}");
        std::fs::write(dir.path().join("junk.zip"), b"not a zip").unwrap();
        let message = LakeRuns::open_partial(dir.path().join("junk.zip"))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("junk.zip") && message.contains("not a readable zip"),
            "{message}"
        );
        assert!(matches!(
            LakeRuns::open_partial(dir.path().join("absent.zip")),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn undecodable_image_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = files();
        files
            .iter_mut()
            .find(|(n, _)| n == "run01/training/class03.png")
            .unwrap()
            .1 = b"junk".to_vec();
        write_folder(dir.path(), &files);
        let message = LakeRuns::open_partial(dir.path()).unwrap_err().to_string();
        assert!(message.contains("run01/training/class03.png"), "{message}");
    }

    /// The built-in runs' files, with `change` applied: the official set made partial.
    fn official_files(
        change: impl Fn(&str, Vec<u8>) -> Option<(String, Vec<u8>)>,
    ) -> Vec<(String, Vec<u8>)> {
        let mut zip = ZipArchive::new(Cursor::new(OFFICIAL_RUNS_ZIP)).unwrap();
        let mut files = Vec::new();
        for index in 0..zip.len() {
            let mut entry = zip.by_index(index).unwrap();
            if entry.is_dir() {
                continue;
            }
            let name = entry.name().unwrap().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            let name = name.trim_start_matches("all_runs/").to_string();
            files.extend(change(&name, bytes));
        }
        files
    }

    /// `open` refuses anything but the whole official set: a missing run, a labels file
    /// cut short, a labels file that is a folder (each used to print a result under the
    /// "400 trials" heading). `open_partial` reads what is there.
    #[test]
    fn the_official_shape_is_required_unless_a_subset_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let zip_path = dir.path().join("all_runs.zip");

        let without_run20 = official_files(|name, bytes| {
            (!name.starts_with("run20/")).then(|| (name.to_string(), bytes))
        });
        write_zip(&zip_path, "", &without_run20);
        let message = LakeRuns::open(&zip_path).unwrap_err().to_string();
        assert!(message.contains("missing: [run20]"), "{message}");
        assert_eq!(LakeRuns::open_partial(&zip_path).unwrap().names().len(), 19);

        let five_lines = official_files(|name, bytes| {
            let bytes = match name {
                "run03/class_labels.txt" => String::from_utf8(bytes)
                    .unwrap()
                    .lines()
                    .take(5)
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
                    .into_bytes(),
                _ => bytes,
            };
            Some((name.to_string(), bytes))
        });
        write_zip(&zip_path, "", &five_lines);
        let message = LakeRuns::open(&zip_path).unwrap_err().to_string();
        assert!(
            message.contains("run03/class_labels.txt") && message.contains("lists 5 test items"),
            "{message}"
        );
        let partial = LakeRuns::open_partial(&zip_path).unwrap();
        let trials: usize = partial.episodes().iter().map(Episode::n_queries).sum();
        assert_eq!(trials, 385);

        let folder = dir.path().join("extracted");
        write_folder(&folder, &official_files(|n, b| Some((n.to_string(), b))));
        std::fs::remove_file(folder.join("run07/class_labels.txt")).unwrap();
        std::fs::create_dir(folder.join("run07/class_labels.txt")).unwrap();
        let message = LakeRuns::open(&folder).unwrap_err().to_string();
        assert!(message.contains("run07/class_labels.txt"), "{message}");
    }

    #[test]
    fn runs_under_two_folders_of_a_zip_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("all_runs.zip");
        let mut both = files();
        both.extend(
            files()
                .into_iter()
                .map(|(name, bytes)| (format!("copy/{name}"), bytes)),
        );
        write_zip(&path, "", &both);
        let message = LakeRuns::open_partial(&path).unwrap_err().to_string();
        assert!(
            message.contains("more than one folder") && message.contains("copy/"),
            "{message}"
        );
    }

    /// A labels line used to be checked by string prefix: `run01/test/../../x` escaped.
    #[test]
    fn labels_cannot_name_a_file_outside_the_run() {
        for path in [
            "run01/test/../../../../etc/passwd",
            "run01/test/../training/class01.png",
            "run01/test/sub/item01.png",
            "run01/test/..",
            "run01/test/",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut files = files();
            files.retain(|(name, _)| name != &format!("run01/{CLASS_LABELS}"));
            files.push((
                format!("run01/{CLASS_LABELS}"),
                format!("{path} run01/training/class01.png\n").into_bytes(),
            ));
            write_folder(dir.path(), &files);
            let message = LakeRuns::open_partial(dir.path()).unwrap_err().to_string();
            assert!(
                message.contains("the test item is not in run01/test/"),
                "{path}: {message}"
            );
        }
    }

    /// Damaged runs: the whole zip mutated, or only run01's `class_labels.txt`. Reading
    /// never panics, and runs that read are well formed.
    #[test]
    fn fuzz_class_labels_and_runs_zip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("all_runs.zip");
        let files = files();
        write_zip(&path, "", &files);
        let zip = std::fs::read(&path).unwrap();
        let labels_at = files
            .iter()
            .position(|(name, _)| name == "run01/class_labels.txt")
            .unwrap();
        let report = crate::testing::fuzz::fuzz(
            "class_labels.txt and the runs zip",
            &[zip, files[labels_at].1.clone()],
            &[
                b"../",
                b"/",
                b"run01/",
                b"test/",
                b"training/",
                b"class01.png",
                b"\n",
                b" ",
                b"\0",
                b"\xff",
                b"run02/training/class01.png",
            ],
            |which, bytes| {
                if which == 0 {
                    std::fs::write(&path, bytes).unwrap();
                } else {
                    let mut mutated = files.clone();
                    mutated[labels_at].1 = bytes.to_vec();
                    write_zip(&path, "", &mutated);
                }
                let runs = match LakeRuns::open_partial(&path) {
                    Err(e) => return Ok(Some(e.to_string())),
                    Ok(runs) => runs,
                };
                for episode in runs.episodes() {
                    let well_formed = episode.labels().len() == episode.n_queries()
                        && episode.labels().iter().all(|&l| l < episode.n_way())
                        && episode.class_names().len() == episode.n_way()
                        && episode
                            .supports()
                            .iter()
                            .flatten()
                            .chain(episode.queries())
                            .all(|image| (image.width(), image.height()) == (105, 105));
                    if !well_formed {
                        return Err(format!("read a malformed run: {:?}", episode.class_names()));
                    }
                }
                Ok(None)
            },
        );
        assert!(
            report.refused > 0 && report.refused < report.executions,
            "{report:?}"
        );
    }
}
