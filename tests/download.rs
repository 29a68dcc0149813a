//! `siamese::data::download` against a local HTTP server that each test starts on
//! 127.0.0.1, serving copies of the small official zips from the data folder: a full
//! download, a cached second call, HTTP errors, a body cut short, a refused connection and
//! corrupt archives. No test reaches outside the machine.

#![cfg(feature = "download")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use siamese::Error;
use siamese::data::{DownloadConfig, Omniglot, Part};

mod common;
use common::omniglot;

/// What the server answers for a path.
#[derive(Clone)]
enum Reply {
    /// 200 with the whole body.
    Body(Arc<Vec<u8>>),
    /// 200 announcing the whole body, then the connection closed after `cut` bytes.
    CutAt(Arc<Vec<u8>>, usize),
    /// This status, with a short text body.
    Status(u16),
}

/// A one-thread HTTP/1.1 server on 127.0.0.1 that answers each request from `routes`
/// (404 for any other path) and counts the requests.
struct Server {
    url: String,
    requests: Arc<AtomicUsize>,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
}

impl Server {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/python", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let routes = Arc::new(Mutex::new(HashMap::new()));
        let (count, table) = (requests.clone(), routes.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let routes = table.lock().unwrap().clone();
                // A client that gives up must not stop the server.
                let _ = answer(stream, &routes);
            }
        });
        Self {
            url,
            requests,
            routes,
        }
    }

    fn route(&self, part: Part, reply: Reply) {
        self.routes
            .lock()
            .unwrap()
            .insert(format!("/python/{}.zip", part.name()), reply);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn config(&self) -> DownloadConfig {
        DownloadConfig::new()
            .with_base_url(&self.url)
            .with_progress(false)
            .with_timeout(Duration::from_secs(10))
    }
}

fn answer(stream: TcpStream, routes: &HashMap<String, Reply>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    // The headers, up to the blank line.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let mut stream = stream;
    let head = |status: &str, length: usize| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n")
    };
    match routes.get(&path).cloned().unwrap_or(Reply::Status(404)) {
        Reply::Body(body) => {
            stream.write_all(head("200 OK", body.len()).as_bytes())?;
            stream.write_all(&body)?;
        }
        Reply::CutAt(body, cut) => {
            stream.write_all(head("200 OK", body.len()).as_bytes())?;
            stream.write_all(&body[..cut])?;
        }
        Reply::Status(code) => {
            let text = format!("status {code}");
            stream.write_all(head(&format!("{code} Error"), text.len()).as_bytes())?;
            stream.write_all(text.as_bytes())?;
        }
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// The message of the `Error::Download` that `result` must be (printed for the log).
fn download_error(result: siamese::Result<Omniglot>) -> String {
    let err = result.unwrap_err();
    let message = err.to_string();
    println!("{message}");
    assert!(matches!(err, Error::Download { .. }), "{message}");
    message
}

/// The bytes of `part`'s zip in the data folder.
fn official_zip(part: Part) -> Arc<Vec<u8>> {
    Arc::new(std::fs::read(omniglot().locate(part).unwrap()).unwrap())
}

/// The files in `dir`, hidden ones (a temporary download) included.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The zip `bytes` with its top folder renamed to `top`.
fn renamed(bytes: &[u8], top: &str) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let name = entry.name().unwrap().into_owned();
        let (_, rest) = name.split_once('/').unwrap_or((&name, ""));
        let name = format!("{top}/{rest}");
        if entry.is_dir() {
            out.add_directory(name, options).unwrap();
        } else {
            out.start_file(name, options).unwrap();
            std::io::copy(&mut entry, &mut out).unwrap();
        }
    }
    out.finish().unwrap().into_inner()
}

#[test]
fn a_full_download_is_checked_and_kept_and_a_second_call_fetches_nothing() {
    let server = Server::start();
    let (small1, small2) = (
        official_zip(Part::BackgroundSmall1),
        official_zip(Part::BackgroundSmall2),
    );
    server.route(Part::BackgroundSmall1, Reply::Body(small1.clone()));
    server.route(Part::BackgroundSmall2, Reply::Body(small2.clone()));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cache/siamese/omniglot");
    let parts = [Part::BackgroundSmall1, Part::BackgroundSmall2];

    let omniglot = server.config().download(&data, &parts).unwrap();
    assert_eq!(server.requests(), 2);
    assert_eq!(
        files(&data),
        [
            "images_background_small1.zip",
            "images_background_small2.zip"
        ]
    );
    assert_eq!(
        std::fs::read(data.join("images_background_small1.zip")).unwrap(),
        *small1
    );
    let set = omniglot.load(Part::BackgroundSmall2).unwrap();
    assert_eq!((set.num_groups(), set.len()), (5, 3120));

    server.config().download(&data, &parts).unwrap();
    assert_eq!(server.requests(), 2, "the second call found the files");
}

#[test]
fn http_errors_are_named_errors_and_leave_nothing_behind() {
    let server = Server::start();
    server.route(Part::Evaluation, Reply::Status(500));
    let dir = tempfile::tempdir().unwrap();
    for (part, code) in [(Part::Background, "404"), (Part::Evaluation, "500")] {
        let message = download_error(server.config().download(dir.path(), &[part]));
        assert!(
            message.contains(&format!("{}.zip", part.name())) && message.contains(code),
            "{message}"
        );
    }
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[test]
fn a_body_cut_short_is_an_error_and_no_file_is_left() {
    let server = Server::start();
    let small1 = official_zip(Part::BackgroundSmall1);
    server.route(
        Part::BackgroundSmall1,
        Reply::CutAt(small1.clone(), small1.len() / 2),
    );
    let dir = tempfile::tempdir().unwrap();

    let message = download_error(
        server
            .config()
            .download(dir.path(), &[Part::BackgroundSmall1]),
    );
    assert!(
        message.contains("images_background_small1.zip"),
        "{message}"
    );
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));

    // Served whole, the same part then downloads.
    server.route(Part::BackgroundSmall1, Reply::Body(small1));
    server
        .config()
        .download(dir.path(), &[Part::BackgroundSmall1])
        .unwrap();
    assert_eq!(files(dir.path()), ["images_background_small1.zip"]);
}

#[test]
fn corrupt_archives_are_named_and_removed() {
    let server = Server::start();
    let small1 = official_zip(Part::BackgroundSmall1);
    // Not a zip at all, for a part checked by its counts (no checksum is known).
    server.route(
        Part::Evaluation,
        Reply::Body(Arc::new(b"<html>moved</html>".to_vec())),
    );
    // A real Omniglot zip, but not the one asked for: its checksum is wrong.
    server.route(Part::BackgroundSmall2, Reply::Body(small1.clone()));
    // A well-formed images_background.zip with the wrong counts: the small set's five
    // alphabets under the full set's top folder.
    server.route(
        Part::Background,
        Reply::Body(Arc::new(renamed(&small1, "images_background"))),
    );
    let dir = tempfile::tempdir().unwrap();

    for (part, why) in [
        (Part::Evaluation, "not a readable zip"),
        (Part::BackgroundSmall2, "SHA-256"),
        (Part::Background, "but this has 5, 136 and 2720"),
    ] {
        let message = download_error(server.config().download(dir.path(), &[part]));
        let kept = dir.path().join(format!("{}.zip", part.name()));
        assert!(
            message.contains(&kept.display().to_string())
                && message.contains("not kept")
                && message.contains(why),
            "{part}: {message}"
        );
    }
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[test]
fn a_refused_connection_is_a_named_error() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let message = download_error(
        DownloadConfig::new()
            .with_base_url(format!("http://127.0.0.1:{port}"))
            .with_progress(false)
            .download(dir.path(), &[Part::BackgroundSmall1]),
    );
    assert!(
        message.contains(&format!("127.0.0.1:{port}/images_background_small1.zip")),
        "{message}"
    );
    assert!(files(dir.path()).is_empty());
}
