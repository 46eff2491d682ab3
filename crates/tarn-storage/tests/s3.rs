//! Against a real S3-compatible server, when `TARN_TEST_S3_ENDPOINT` names
//! one with a bucket `tarn-test` (the pytest suite's moto fixture makes
//! one; `python -m moto.server -p PORT` and a `PUT /tarn-test` by hand).

use bytes::Bytes;
use tarn_storage::Storage;
use tarn_storage::object_store::Error;

#[test]
fn conditional_and_multipart_puts_on_an_s3_server() {
    let Ok(endpoint) = std::env::var("TARN_TEST_S3_ENDPOINT") else {
        eprintln!("TARN_TEST_S3_ENDPOINT is not set; skipped");
        return;
    };
    // SAFETY: this test binary runs this one test; nothing reads the
    // environment concurrently.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
        std::env::set_var("AWS_ALLOW_HTTP", "true");
        std::env::set_var("AWS_ACCESS_KEY_ID", "tarn-test-key");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "tarn-test-secret");
    }
    let scratch = std::env::temp_dir().join(format!("tarn-s3-test-{}", std::process::id()));
    let storage = Storage::from_env(Some("s3://tarn-test/rust-test/"), &scratch).unwrap();
    let shown = format!("{storage:?}");
    assert!(shown.contains("s3://tarn-test/rust-test") && !shown.contains("tarn-test-secret"), "{shown}");
    let root = storage.object().unwrap();
    let env = storage.engine_env();
    assert!(env.iter().any(|(k, v)| k == "AWS_ENDPOINT_URL" && *v == endpoint));
    root.delete_prefix("").unwrap();
    root.put("a/b.txt", Bytes::from_static(b"hello"), true).unwrap();
    assert!(matches!(root.put("a/b.txt", Bytes::from_static(b"again"), true), Err(Error::AlreadyExists { .. })));
    assert_eq!(root.get("a/b.txt").unwrap().as_ref(), b"hello");
    let big = scratch.join("big");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(&big, vec![3u8; 17 * 1024 * 1024]).unwrap();
    assert_eq!(root.upload("a/big.bin", &big, false).unwrap(), 17 * 1024 * 1024);
    assert_eq!(root.head("a/big.bin").unwrap().unwrap().size, 17 * 1024 * 1024);
    assert_eq!(root.list_dir("a").unwrap().objects.len(), 2);
    assert_eq!(root.delete_prefix("").unwrap(), 2);
    let _ = std::fs::remove_dir_all(&scratch);
}
