//! The built binary serving a manifests file that changes under it as files do in the field:
//! written in pieces, emptied, replaced by something that is not a regular file or is too
//! large; and refusing such files at start with one line.

mod common;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{self, BINARY, Process};
use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const WEB0: &str = "web-0.nginx-svc.default.svc.cluster.local.";

fn serve(path: &std::path::Path, extra: &[&str]) -> Process {
    let mut command = process::command(None);
    command
        .args(["--manifests", path.to_str().unwrap()])
        .args(extra);
    Process::start(command)
}

async fn rcode(process: &Process, name: &str) -> ResponseCode {
    let client = udp_client(process.dns).await;
    ask(&client, name, RecordType::A, None)
        .await
        .metadata
        .response_code
}

/// A file rewritten in place in two writes half a second apart (as `kubectl get ... > file`
/// does) is served only once whole: never the half that lacks web-0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_in_pieces_is_served_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    let cluster = statefulset_cluster();
    std::fs::write(&path, documents(&cluster)).unwrap();
    let server = serve(&path, &[]);
    assert_eq!(rcode(&server, WEB0).await, ResponseCode::NoError);

    let extra: Vec<String> = (0..4)
        .map(|i| {
            pod(
                "default",
                &format!("new-{i}"),
                "nginx",
                &format!("10.244.8.{i}"),
                Some((&format!("new-{i}"), "nginx-svc")),
                true,
            )
        })
        .collect();
    // The first piece: the Service and two new pods; web-0 and web-1 come in the second.
    let first = documents(&[cluster[0].clone(), extra[0].clone(), extra[1].clone()]) + "---\n";
    let second = documents(&[
        cluster[1].clone(),
        cluster[2].clone(),
        extra[2].clone(),
        extra[3].clone(),
    ]);
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(first.as_bytes()).unwrap();
    file.flush().unwrap();
    let written = Instant::now();
    while written.elapsed() < Duration::from_millis(500) {
        assert_eq!(
            rcode(&server, WEB0).await,
            ResponseCode::NoError,
            "served half-written"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    file.write_all(second.as_bytes()).unwrap();
    drop(file);
    let whole = eventually(Duration::from_secs(5), || async {
        rcode(&server, "new-3.nginx-svc.default.svc.cluster.local.").await == ResponseCode::NoError
    })
    .await;
    assert!(whole.is_some(), "the whole file was never served");
    eprintln!("served {:?} after the last write", whole.unwrap());
    assert_eq!(rcode(&server, WEB0).await, ResponseCode::NoError);
    assert_eq!(server.lines("manifests changed; reloading").len(), 1);
}

/// A file emptied while serving (`: > file`) is logged and the last state kept; an empty List
/// is a cluster with no objects, and served as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_file_keeps_the_last_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&statefulset_cluster())).unwrap();
    let server = serve(&path, &[]);
    std::fs::File::create(&path).unwrap();
    let warned = server.wait_for_line("manifests file is empty", Duration::from_secs(5));
    assert!(warned.is_some_and(|(line, _)| line.contains("WARN")));
    assert_eq!(rcode(&server, WEB0).await, ResponseCode::NoError);
    std::fs::write(&path, "apiVersion: v1\nkind: List\nitems: []\n").unwrap();
    let emptied = eventually(Duration::from_secs(5), || async {
        rcode(&server, WEB0).await == ResponseCode::NXDomain
    });
    assert!(emptied.await.is_some());
}

/// Something that is not a regular file, or is larger than the bound, is refused: at start with
/// one line (a FIFO does not block start-up, a device is not read), on reload with the last
/// state kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfit_files_are_refused_at_start_and_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let large = dir.path().join("large.yaml");
    let mut cluster = statefulset_cluster();
    cluster.push(format!("# {}\n", "x".repeat(1000)));
    std::fs::write(&large, documents(&cluster)).unwrap();
    let size = std::fs::metadata(&large).unwrap().len();
    assert!((1024..2048).contains(&size), "{size}");
    for (args, expected) in [
        (
            vec![fifo.to_str().unwrap()],
            "not a regular file (a FIFO)".to_string(),
        ),
        (
            vec!["/dev/zero"],
            "not a regular file (a character device)".into(),
        ),
        (
            vec![dir.path().to_str().unwrap()],
            "not a regular file (a directory)".into(),
        ),
        (
            vec![large.to_str().unwrap(), "--manifests-max-size", "1Ki"],
            format!(
                "{}: {:.1} KiB is larger than --manifests-max-size (1 KiB)",
                large.display(),
                size as f64 / 1024.0
            ),
        ),
    ] {
        let started = Instant::now();
        let output = Command::new(BINARY)
            .arg("--manifests")
            .args(&args)
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    // On reload: a file grown past the bound, then a FIFO in its place; the last state stays.
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, documents(&statefulset_cluster())).unwrap();
    let server = serve(&path, &["--manifests-max-size", "2Ki"]);
    let mut grown = statefulset_cluster();
    for i in 0..20 {
        grown.push(pod(
            "default",
            &format!("p-{i}"),
            "other",
            "10.9.0.1",
            None,
            true,
        ));
    }
    replace_file(&path, &documents(&grown));
    let refused = server.wait_for_line(
        "is larger than --manifests-max-size",
        Duration::from_secs(5),
    );
    assert!(refused.is_some_and(|(line, _)| line.contains("ERROR")));
    assert_eq!(rcode(&server, WEB0).await, ResponseCode::NoError);
    std::fs::remove_file(&path).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    let refused = server.wait_for_line("not a regular file (a FIFO)", Duration::from_secs(5));
    assert!(refused.is_some());
    assert_eq!(rcode(&server, WEB0).await, ResponseCode::NoError);
}
