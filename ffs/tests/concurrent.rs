//! The engine's shared state under interleaved operations: several operations on one mount
//! run at once (each on its own directory and files, as the kernel's locks allow), over a
//! disk on which every read and write is a suspension point, so the operations interleave
//! at every block they touch. Inode and block allocation, the summary counts and the inode
//! references must come out as if the operations had run one after the other: the checker
//! finds the image clean, and every file holds what its task wrote.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use ffs::{block_on, Disk, Fs, MemDisk, MountOptions, NewfsOptions};

/// A [`MemDisk`] whose every access first returns `Pending` once (waking itself), so that
/// concurrent operations are interleaved at each access; a seed varies how often each one
/// yields (one to three times), so each seed interleaves them differently.
#[derive(Clone)]
struct YieldDisk {
    inner: MemDisk,
    seed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

struct YieldOnce(u8);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl YieldDisk {
    fn pause(&self) -> YieldOnce {
        use std::sync::atomic::Ordering;
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed.store(x, Ordering::Relaxed);
        YieldOnce(1 + (x % 3) as u8)
    }
}

impl Disk for YieldDisk {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    async fn read(&self, off: u64, buf: &mut [u8]) -> ffs::Result<()> {
        self.pause().await;
        self.inner.read(off, buf).await
    }
    async fn write(&self, off: u64, buf: &[u8]) -> ffs::Result<()> {
        self.pause().await;
        self.inner.write(off, buf).await
    }
    async fn flush(&self) -> ffs::Result<()> {
        Ok(())
    }
    async fn pace(&self) -> ffs::Result<()> {
        self.pause().await;
        Ok(())
    }
}

/// Polls every future in turn until all are done (a round-robin executor on one thread).
fn join_all<T>(mut futs: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut left = futs.len();
    while left > 0 {
        for (i, f) in futs.iter_mut().enumerate() {
            if out[i].is_some() {
                continue;
            }
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                out[i] = Some(v);
                left -= 1;
            }
        }
    }
    out.into_iter().map(|v| v.expect("done")).collect()
}

fn content(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| ((seed * 131 + j * 7 + j / 251) % 253) as u8)
        .collect()
}

const TASKS: usize = 8;
const FILES: usize = 24;

/// One task: in its own directory, files of varied sizes (fragments, blocks, indirect
/// blocks), some grown, truncated, unlinked, plus a subdirectory made and removed; returns
/// what is left: name → contents.
async fn task(fs: &Fs<YieldDisk>, dir: u32, t: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut left = Vec::new();
    for k in 0..FILES {
        let name = format!("f{k}").into_bytes();
        let len = [0, 1, 700, 5000, 40_000, 150_000][(t + k) % 6];
        let f = fs.create(dir, &name, 0o100644, 0, 0, 0).await.unwrap();
        let mut data = content(t * 1000 + k, len);
        assert_eq!(fs.write(f, 0, &data).await.unwrap(), len);
        if k % 4 == 1 {
            // Grow past the fragments, then cut back.
            let more = content(k, 9000);
            fs.write(f, len as u64, &more).await.unwrap();
            data.extend_from_slice(&more);
            fs.truncate(f, (data.len() / 2) as u64).await.unwrap();
            data.truncate(data.len() / 2);
        }
        if k % 3 == 2 {
            fs.unlink(dir, &name).await.unwrap();
        } else {
            left.push((name, data));
        }
        if k % 5 == 0 {
            let d = fs.mkdir(dir, b"sub", 0o755, 0, 0).await.unwrap();
            fs.create(d, b"x", 0o100644, 0, 0, 0).await.unwrap();
            fs.unlink(d, b"x").await.unwrap();
            fs.rmdir(dir, b"sub").await.unwrap();
        }
    }
    // A file kept open (referenced) across its unlink, released at the end.
    let f = fs.create(dir, b"open", 0o100644, 0, 0, 0).await.unwrap();
    fs.retain(f);
    fs.write(f, 0, &content(t, 20_000)).await.unwrap();
    fs.unlink(dir, b"open").await.unwrap();
    fs.release(f).await.unwrap();
    left
}

fn run(ufs2: bool, seed: u64) {
    let inner = MemDisk::new(48 << 20);
    let opts = NewfsOptions {
        ufs2,
        ..NewfsOptions::default()
    };
    block_on(ffs::newfs(&inner, &opts)).unwrap();
    let disk = YieldDisk {
        inner: inner.clone(),
        seed: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(seed | 1)),
    };
    let fs = block_on(Fs::mount(disk, MountOptions::default())).unwrap();
    let root = fs.root();
    let dirs: Vec<u32> = (0..TASKS)
        .map(|t| block_on(fs.mkdir(root, format!("d{t}").as_bytes(), 0o755, 0, 0)).unwrap())
        .collect();
    let futs = (0..TASKS)
        .map(|t| Box::pin(task(&fs, dirs[t], t)) as Pin<Box<dyn Future<Output = _>>>)
        .collect();
    let left: Vec<Vec<(Vec<u8>, Vec<u8>)>> = join_all(futs);
    let before = fs.statvfs();
    block_on(fs.unmount()).unwrap();

    let findings = block_on(ffs::check(&inner)).unwrap();
    assert!(findings.is_empty(), "ufs2={ufs2} seed={seed}: {findings:?}");
    let fs = block_on(Fs::mount(inner.clone(), MountOptions::default())).unwrap();
    assert_eq!(
        fs.statvfs(),
        before,
        "the counts kept in memory are the map's"
    );
    for (t, files) in left.iter().enumerate() {
        let d = block_on(fs.lookup(root, format!("d{t}").as_bytes())).unwrap();
        for (name, data) in files {
            let f = block_on(fs.lookup(d, name)).unwrap();
            let a = block_on(fs.getattr(f)).unwrap();
            assert_eq!(a.size, data.len() as u64);
            let mut back = vec![0u8; data.len()];
            assert_eq!(block_on(fs.read(f, 0, &mut back)).unwrap(), data.len());
            assert!(
                back == *data,
                "task {t} {:?}",
                String::from_utf8_lossy(name)
            );
        }
        let listed = block_on(fs.readdir(d, 0, 1000)).unwrap();
        assert_eq!(
            listed.len(),
            files.len() + 2,
            "task {t}: only its files are left"
        );
    }
}

#[test]
fn interleaved_operations_allocate_as_if_one_after_the_other() {
    for seed in [1, 7, 1234] {
        run(true, seed);
        run(false, seed);
    }
}
