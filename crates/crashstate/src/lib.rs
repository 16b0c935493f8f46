//! The recorder: an `LD_PRELOAD` library that logs every file operation under
//! one directory, so that a checker can rebuild what the disk may hold after a
//! power loss at any point of the run.
//!
//! Loaded with `LD_PRELOAD=libcrashstate_recorder.so`, `CRASHSTATE_ROOT=<dir>`
//! and `CRASHSTATE_LOG=<file>`, it defines libc's file functions (`open*`,
//! `creat*`, `write`, `pwrite*`, `writev`, `pwritev*`, `ftruncate*`,
//! `fallocate*`, `posix_fallocate*`, `fsync`, `fdatasync`, `sync_file_range`,
//! `sync`, `syncfs`, `rename*`, `unlink*`, `rmdir`, `mkdir*`, `close`, `dup*`,
//! `fcntl` (for `F_DUPFD`) and `mmap*` (to refuse shared writable mappings)),
//! calls the real function found with `dlsym(RTLD_NEXT)`, and appends what it
//! did to the op log (layout: [`mod@format`]). Without both variables it only
//! forwards.
//!
//! Invariants:
//! - The log order is the order in which the operations took effect: an
//!   operation on a recorded fd, and every open, holds the one recorder mutex
//!   from before the real call until its record is appended. Operations on
//!   other fds (pipes, stdout, sockets, files elsewhere) take no lock.
//! - A sync is logged only after it returned success: a write logged before
//!   a sync record of its inode was covered by that sync.
//! - Nothing in a hook allocates, and the log is written with raw `writev`
//!   system calls, never through the hooked functions; a thread-local flag
//!   makes a hook called from inside a hook (a libc function calling another)
//!   forward at once.
//! - `errno` after a hook is the real call's.
//! - Inodes are identified by `(dev, ino)` from `fstat` of the fd, so every fd
//!   of a file (sled's own and the store's separately opened one for
//!   `fdatasync`) is the same inode in the log.
//!
//! Limits (the workload stays inside them; the checker fails on an
//! [`format::UNSUPPORTED`] record): paths under the root are taken as written
//! (no symlinks or `..` below the root), fds up to 65535, x86-64 and aarch64
//! Linux only (the variadic `open`/`fcntl` are defined with a fixed third
//! argument, which those ABIs pass like an ordinary one).
#![allow(
    unsafe_code,
    reason = "an LD_PRELOAD interposer defines C functions and calls the real ones through dlsym"
)]
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    reason = "libc's integer types: results are checked non-negative before a cast, fds and lengths are small, and the crate is x86-64/aarch64 Linux only"
)]
#![allow(
    clippy::missing_safety_doc,
    reason = "the exported functions are libc's, with libc's contracts; no Rust code calls them"
)]

pub mod format;

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use libc::{mode_t, off64_t, off_t, size_t, ssize_t};

const PATH_MAX: usize = 4096;
const MAX_FDS: usize = 1 << 16;

/// Per fd: 0 not recorded, [`FILE`] a file under the root, [`DIRECTORY`] a directory under it.
static TRACKED: [AtomicU8; MAX_FDS] = [const { AtomicU8::new(0) }; MAX_FDS];
const FILE: u8 = 1;
const DIRECTORY: u8 = 2;

/// Set once the constructor found both variables and opened the log.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static RECORDER: Mutex<Recorder> = Mutex::new(Recorder {
    log_fd: -1,
    root: [0; PATH_MAX],
    root_len: 0,
});

struct Recorder {
    log_fd: c_int,
    root: [u8; PATH_MAX],
    root_len: usize,
}

thread_local! {
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Marks the thread as inside a hook until dropped.
struct HookScope;

impl HookScope {
    /// `None` when recording is off or the thread is already inside a hook.
    fn enter() -> Option<HookScope> {
        if !ACTIVE.load(Ordering::Acquire) {
            return None;
        }
        IN_HOOK.with(|flag| {
            if flag.get() {
                None
            } else {
                flag.set(true);
                Some(HookScope)
            }
        })
    }
}

impl Drop for HookScope {
    fn drop(&mut self) {
        IN_HOOK.with(|flag| flag.set(false));
    }
}

fn lock() -> MutexGuard<'static, Recorder> {
    RECORDER.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn tracked(fd: c_int) -> u8 {
    usize::try_from(fd)
        .ok()
        .and_then(|fd| TRACKED.get(fd))
        .map_or(0, |kind| kind.load(Ordering::Acquire))
}

fn set_tracked(fd: c_int, kind: u8) {
    if let Some(slot) = usize::try_from(fd).ok().and_then(|fd| TRACKED.get(fd)) {
        slot.store(kind, Ordering::Release);
    }
}

fn errno() -> c_int {
    // SAFETY: glibc's errno location is valid for the calling thread.
    unsafe { *libc::__errno_location() }
}

fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value }
}

/// Writes to stderr with a raw system call and aborts: the recorder cannot go on.
fn die(message: &str) -> ! {
    // SAFETY: a write of a valid buffer to fd 2.
    unsafe {
        libc::syscall(libc::SYS_write, 2, message.as_ptr(), message.len());
        libc::abort()
    }
}

/// The real function `name` (NUL-terminated), resolved once into `cache`.
fn real_symbol(cache: &AtomicUsize, name: &[u8]) -> usize {
    let cached = cache.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: `name` is NUL-terminated; RTLD_NEXT finds the next definition (libc's).
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) } as usize;
    if found == 0 {
        die("crashstate recorder: dlsym(RTLD_NEXT) found no real libc function\n");
    }
    cache.store(found, Ordering::Relaxed);
    found
}

/// `real!("name", fn type)`: the next definition of `name`, as that type.
macro_rules! real {
    ($name:literal, $type:ty) => {{
        static CACHE: AtomicUsize = AtomicUsize::new(0);
        let address = real_symbol(&CACHE, concat!($name, "\0").as_bytes());
        // SAFETY: the symbol is libc's function of that name, which has this signature.
        unsafe { std::mem::transmute::<usize, $type>(address) }
    }};
}

// ---------------------------------------------------------------------------
// Set-up.
// ---------------------------------------------------------------------------

#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = start_recording;

/// Runs when the library is loaded (single-threaded, before `main`).
extern "C" fn start_recording() {
    let (Some(root), Some(log)) = (env_bytes(format::ROOT_ENV), env_bytes(format::LOG_ENV)) else {
        return;
    };
    let mut recorder = lock();
    if root.len() >= PATH_MAX || root.first() != Some(&b'/') {
        die("crashstate recorder: CRASHSTATE_ROOT must be an absolute path\n");
    }
    let mut root_len = root.len();
    while root_len > 1 && root[root_len - 1] == b'/' {
        root_len -= 1;
    }
    recorder.root[..root_len].copy_from_slice(&root[..root_len]);
    recorder.root_len = root_len;
    let mut log_path = [0u8; PATH_MAX];
    if log.len() >= PATH_MAX {
        die("crashstate recorder: CRASHSTATE_LOG is too long\n");
    }
    log_path[..log.len()].copy_from_slice(log);
    // SAFETY: a NUL-terminated path; a raw system call, so no hook runs.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            log_path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        die("crashstate recorder: cannot create CRASHSTATE_LOG\n");
    }
    recorder.log_fd = fd as c_int;
    write_all_raw(recorder.log_fd, &[format::MAGIC]);
    ACTIVE.store(true, Ordering::Release);
}

/// The value of an environment variable (the process environment lives as long as the process).
fn env_bytes(name: &str) -> Option<&'static [u8]> {
    let mut key = [0u8; 64];
    key[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: a NUL-terminated name; getenv's result is NUL-terminated and lives on.
    unsafe {
        let value = libc::getenv(key.as_ptr().cast());
        if value.is_null() {
            return None;
        }
        let bytes = std::ffi::CStr::from_ptr(value).to_bytes();
        (!bytes.is_empty()).then_some(bytes)
    }
}

/// Appends the buffers to `fd` with raw `writev` calls until all is written.
fn write_all_raw(fd: c_int, buffers: &[&[u8]]) {
    for buffer in buffers {
        let mut rest: &[u8] = buffer;
        while !rest.is_empty() {
            // SAFETY: a write of a valid buffer; a raw system call, so no hook runs.
            let written = unsafe { libc::syscall(libc::SYS_write, fd, rest.as_ptr(), rest.len()) };
            if written < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                die("crashstate recorder: cannot append to the op log\n");
            }
            rest = &rest[written as usize..];
        }
    }
}

// ---------------------------------------------------------------------------
// Paths and inodes.
// ---------------------------------------------------------------------------

/// A path buffer.
struct PathBuf {
    bytes: [u8; 2 * PATH_MAX],
    len: usize,
}

impl PathBuf {
    fn new() -> Self {
        PathBuf {
            bytes: [0; 2 * PATH_MAX],
            len: 0,
        }
    }

    fn push(&mut self, part: &[u8]) -> bool {
        if self.len + part.len() >= self.bytes.len() {
            return false;
        }
        self.bytes[self.len..self.len + part.len()].copy_from_slice(part);
        self.len += part.len();
        true
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// `/proc/self/fd/<fd>` resolved into `out`.
fn fd_path(fd: c_int, out: &mut PathBuf) -> bool {
    let mut link = PathBuf::new();
    let mut digits = [0u8; 12];
    let mut at = digits.len();
    let mut value = fd.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    if !(link.push(b"/proc/self/fd/") && link.push(&digits[at..]) && link.push(b"\0")) {
        return false;
    }
    // SAFETY: a NUL-terminated link path and a buffer of the given size.
    let len = unsafe { libc::readlink(link.bytes.as_ptr().cast(), out.bytes.as_mut_ptr().cast(), PATH_MAX) };
    if len <= 0 {
        return false;
    }
    out.len = len as usize;
    true
}

/// The absolute form of `path`, relative to `dirfd` (or the working directory).
fn absolute(dirfd: c_int, path: *const c_char, out: &mut PathBuf) -> bool {
    if path.is_null() {
        return false;
    }
    // SAFETY: libc's contract: `path` is a NUL-terminated string.
    let path = unsafe { std::ffi::CStr::from_ptr(path) }.to_bytes();
    if path.first() == Some(&b'/') {
        return out.push(path);
    }
    let based = if dirfd == libc::AT_FDCWD {
        // SAFETY: a buffer of the given size.
        let cwd = unsafe { libc::getcwd(out.bytes.as_mut_ptr().cast(), PATH_MAX) };
        if cwd.is_null() {
            return false;
        }
        out.len = out.bytes.iter().position(|&byte| byte == 0).unwrap_or(0);
        true
    } else {
        fd_path(dirfd, out)
    };
    based && out.push(b"/") && out.push(path)
}

impl Recorder {
    /// The path relative to the root, if `absolute` is the root or below it.
    fn relative<'a>(&self, absolute: &'a [u8]) -> Option<&'a [u8]> {
        let root = &self.root[..self.root_len];
        let rest = absolute.strip_prefix(root)?;
        match rest {
            [] => Some(rest),
            [b'/', tail @ ..] => Some(tail),
            _ if root == b"/" => Some(rest),
            _ => None,
        }
    }

    fn append(&self, kind: u8, inode: Inode, fields: &[u8], tail: &[&[u8]]) {
        let len = 16 + fields.len() + tail.iter().map(|part| part.len()).sum::<usize>();
        let Ok(len) = u32::try_from(len) else {
            die("crashstate recorder: a record over 4 GiB\n");
        };
        let mut head = [0u8; 21];
        head[0] = kind;
        head[1..5].copy_from_slice(&len.to_be_bytes());
        head[5..13].copy_from_slice(&inode.dev.to_be_bytes());
        head[13..21].copy_from_slice(&inode.ino.to_be_bytes());
        write_all_raw(self.log_fd, &[&head, fields]);
        write_all_raw(self.log_fd, tail);
    }
}

#[derive(Clone, Copy, Default)]
struct Inode {
    dev: u64,
    ino: u64,
    directory: bool,
}

fn stat_fd(fd: c_int) -> Option<Inode> {
    // SAFETY: an out-parameter of the right type.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { libc::fstat(fd, &raw mut stat) } == 0).then(|| inode_of(&stat))
}

fn stat_at(dirfd: c_int, path: *const c_char) -> Option<Inode> {
    // SAFETY: an out-parameter of the right type.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated (libc's contract for the hooked call).
    (unsafe { libc::fstatat(dirfd, path, &raw mut stat, libc::AT_SYMLINK_NOFOLLOW) } == 0).then(|| inode_of(&stat))
}

fn inode_of(stat: &libc::stat) -> Inode {
    Inode {
        dev: stat.st_dev,
        ino: stat.st_ino,
        directory: stat.st_mode & libc::S_IFMT == libc::S_IFDIR,
    }
}

// ---------------------------------------------------------------------------
// Hooks: shared bodies.
// ---------------------------------------------------------------------------

fn hook_open(dirfd: c_int, path: *const c_char, flags: c_int, call: impl FnOnce() -> c_int) -> c_int {
    let Some(_scope) = HookScope::enter() else {
        return call();
    };
    let recorder = lock();
    let existed = flags & libc::O_CREAT == 0 || stat_at(dirfd, path).is_some();
    let fd = call();
    let saved = errno();
    if fd >= 0 {
        set_tracked(fd, 0);
        let mut resolved = PathBuf::new();
        if fd_path(fd, &mut resolved) {
            if let (Some(relative), Some(inode)) = (recorder.relative(resolved.as_bytes()), stat_fd(fd)) {
                let mut open_flags = 0u8;
                if !existed {
                    open_flags |= format::OPEN_CREATED;
                }
                if existed && flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY {
                    open_flags |= format::OPEN_TRUNCATED;
                }
                if inode.directory {
                    open_flags |= format::OPEN_DIRECTORY;
                }
                set_tracked(fd, if inode.directory { DIRECTORY } else { FILE });
                recorder.append(format::OPEN, inode, &[open_flags], &[relative]);
            }
        }
    }
    set_errno(saved);
    fd
}

/// A write of `result` bytes from `buffers` at `offset` (`None`: the fd's position, read after the write).
fn hook_write(fd: c_int, offset: Option<i64>, buffers: &[&[u8]], call: impl FnOnce() -> ssize_t) -> ssize_t {
    if tracked(fd) == 0 {
        return call();
    }
    let Some(_scope) = HookScope::enter() else {
        return call();
    };
    let recorder = lock();
    let result = call();
    let saved = errno();
    if result > 0 {
        let written = result as usize;
        let start = match offset {
            Some(offset) => offset,
            // SAFETY: lseek on an open fd.
            None => (unsafe { libc::lseek64(fd, 0, libc::SEEK_CUR) }) - written as i64,
        };
        if let Some(inode) = stat_fd(fd) {
            let mut at = start as u64;
            let mut left = written;
            for buffer in buffers {
                if left == 0 {
                    break;
                }
                let part = &buffer[..buffer.len().min(left)];
                if !part.is_empty() {
                    recorder.append(format::WRITE, inode, &at.to_be_bytes(), &[part]);
                }
                at += part.len() as u64;
                left -= part.len();
            }
        }
    }
    set_errno(saved);
    result
}

/// An operation on a recorded fd, logged as `kind` with `fields` when `call` returns 0.
fn hook_fd_op(fd: c_int, kind: u8, fields: &[u8], call: impl FnOnce() -> c_int) -> c_int {
    if tracked(fd) == 0 {
        return call();
    }
    let Some(_scope) = HookScope::enter() else {
        return call();
    };
    let recorder = lock();
    let result = call();
    let saved = errno();
    if result == 0 {
        if let Some(inode) = stat_fd(fd) {
            recorder.append(kind, inode, fields, &[]);
        }
    }
    set_errno(saved);
    result
}

/// A path operation (`unlink`, `rmdir`, `mkdir`): the inode is read before
/// (`before`) or after the call.
fn hook_path_op(dirfd: c_int, path: *const c_char, kind: u8, before: bool, call: impl FnOnce() -> c_int) -> c_int {
    let Some(_scope) = HookScope::enter() else {
        return call();
    };
    let mut absolute_path = PathBuf::new();
    if !absolute(dirfd, path, &mut absolute_path) {
        return call();
    }
    let recorder = lock();
    let Some(relative) = recorder.relative(absolute_path.as_bytes()) else {
        drop(recorder);
        return call();
    };
    let inode_before = if before { stat_at(dirfd, path) } else { None };
    let result = call();
    let saved = errno();
    if result == 0 {
        let inode = if before { inode_before } else { stat_at(dirfd, path) };
        recorder.append(kind, inode.unwrap_or_default(), &[], &[relative]);
    }
    set_errno(saved);
    result
}

fn hook_rename(
    old_dirfd: c_int,
    old: *const c_char,
    new_dirfd: c_int,
    new: *const c_char,
    call: impl FnOnce() -> c_int,
) -> c_int {
    let Some(_scope) = HookScope::enter() else {
        return call();
    };
    let mut old_path = PathBuf::new();
    let mut new_path = PathBuf::new();
    if !(absolute(old_dirfd, old, &mut old_path) && absolute(new_dirfd, new, &mut new_path)) {
        return call();
    }
    let recorder = lock();
    let old_relative = recorder.relative(old_path.as_bytes());
    let new_relative = recorder.relative(new_path.as_bytes());
    if old_relative.is_none() && new_relative.is_none() {
        drop(recorder);
        return call();
    }
    let inode = stat_at(old_dirfd, old).unwrap_or_default();
    let result = call();
    let saved = errno();
    if result == 0 {
        match (old_relative, new_relative) {
            (Some(from), Some(to)) => {
                let from_len = (from.len() as u32).to_be_bytes();
                recorder.append(format::RENAME, inode, &from_len, &[from, to]);
            }
            _ => recorder.append(
                format::UNSUPPORTED,
                inode,
                b"rename across the edge of the recorded root",
                &[],
            ),
        }
    }
    set_errno(saved);
    result
}

fn hook_sync_all(call: impl FnOnce() -> c_int) -> c_int {
    let Some(_scope) = HookScope::enter() else {
        return call();
    };
    let recorder = lock();
    let result = call();
    let saved = errno();
    if result == 0 {
        recorder.append(format::SYNC_ALL, Inode::default(), &[], &[]);
    }
    set_errno(saved);
    result
}

/// `fd` now refers to what `source` does (a duplicate), or to nothing it knew.
fn hook_duplicate(source: c_int, call: impl FnOnce() -> c_int) -> c_int {
    let Some(_scope) = HookScope::enter() else {
        return call();
    };
    let _recorder = lock();
    let result = call();
    if result >= 0 {
        set_tracked(result, tracked(source));
    }
    result
}

fn iovecs<'a>(iov: *const libc::iovec, count: c_int) -> ([&'a [u8]; 64], usize) {
    let mut buffers: [&[u8]; 64] = [&[]; 64];
    let count = usize::try_from(count).unwrap_or(0);
    if count > buffers.len() || iov.is_null() {
        die("crashstate recorder: writev with more than 64 buffers\n");
    }
    for (index, slot) in buffers.iter_mut().enumerate().take(count) {
        // SAFETY: libc's contract: `iov` holds `count` valid iovecs.
        let vector = unsafe { &*iov.add(index) };
        if !vector.iov_base.is_null() {
            // SAFETY: as above.
            *slot = unsafe { std::slice::from_raw_parts(vector.iov_base.cast::<u8>(), vector.iov_len) };
        }
    }
    (buffers, count)
}

fn buffer<'a>(data: *const c_void, len: size_t) -> &'a [u8] {
    if data.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: libc's contract: `data` holds `len` readable bytes.
    unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }
}

// ---------------------------------------------------------------------------
// Hooks: the exported functions.
// ---------------------------------------------------------------------------

/// libc's functions, under libc's names (exported from the library even
/// though the module is private; their contracts are libc's).
mod exported {
    use super::{
        buffer, c_char, c_int, c_uint, c_void, format, hook_duplicate, hook_fd_op, hook_open, hook_path_op,
        hook_rename, hook_sync_all, hook_write, iovecs, lock, mode_t, off64_t, off_t, real_symbol, set_tracked, size_t,
        ssize_t, stat_fd, tracked, AtomicUsize, HookScope, FILE,
    };

    type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
    type OpenAtFn = unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int;

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
        let real = real!("open", OpenFn);
        hook_open(libc::AT_FDCWD, path, flags, || unsafe { real(path, flags, mode) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
        let real = real!("open64", OpenFn);
        hook_open(libc::AT_FDCWD, path, flags, || unsafe { real(path, flags, mode) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
        let real = real!("openat", OpenAtFn);
        hook_open(dirfd, path, flags, || unsafe { real(dirfd, path, flags, mode) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
        let real = real!("openat64", OpenAtFn);
        hook_open(dirfd, path, flags, || unsafe { real(dirfd, path, flags, mode) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn creat(path: *const c_char, mode: mode_t) -> c_int {
        let real = real!("creat", unsafe extern "C" fn(*const c_char, mode_t) -> c_int);
        let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
        hook_open(libc::AT_FDCWD, path, flags, || unsafe { real(path, mode) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn creat64(path: *const c_char, mode: mode_t) -> c_int {
        let real = real!("creat64", unsafe extern "C" fn(*const c_char, mode_t) -> c_int);
        let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
        hook_open(libc::AT_FDCWD, path, flags, || unsafe { real(path, mode) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn write(fd: c_int, data: *const c_void, len: size_t) -> ssize_t {
        let real = real!("write", unsafe extern "C" fn(c_int, *const c_void, size_t) -> ssize_t);
        hook_write(fd, None, &[buffer(data, len)], || unsafe { real(fd, data, len) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn pwrite(fd: c_int, data: *const c_void, len: size_t, offset: off_t) -> ssize_t {
        let real = real!(
            "pwrite",
            unsafe extern "C" fn(c_int, *const c_void, size_t, off_t) -> ssize_t
        );
        hook_write(fd, Some(offset), &[buffer(data, len)], || unsafe {
            real(fd, data, len, offset)
        })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn pwrite64(fd: c_int, data: *const c_void, len: size_t, offset: off64_t) -> ssize_t {
        let real = real!(
            "pwrite64",
            unsafe extern "C" fn(c_int, *const c_void, size_t, off64_t) -> ssize_t
        );
        hook_write(fd, Some(offset), &[buffer(data, len)], || unsafe {
            real(fd, data, len, offset)
        })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, count: c_int) -> ssize_t {
        let real = real!(
            "writev",
            unsafe extern "C" fn(c_int, *const libc::iovec, c_int) -> ssize_t
        );
        if tracked(fd) == 0 {
            return unsafe { real(fd, iov, count) };
        }
        let (buffers, used) = iovecs(iov, count);
        hook_write(fd, None, &buffers[..used], || unsafe { real(fd, iov, count) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn pwritev(fd: c_int, iov: *const libc::iovec, count: c_int, offset: off_t) -> ssize_t {
        let real = real!(
            "pwritev",
            unsafe extern "C" fn(c_int, *const libc::iovec, c_int, off_t) -> ssize_t
        );
        if tracked(fd) == 0 {
            return unsafe { real(fd, iov, count, offset) };
        }
        let (buffers, used) = iovecs(iov, count);
        hook_write(fd, Some(offset), &buffers[..used], || unsafe {
            real(fd, iov, count, offset)
        })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn pwritev64(fd: c_int, iov: *const libc::iovec, count: c_int, offset: off64_t) -> ssize_t {
        let real = real!(
            "pwritev64",
            unsafe extern "C" fn(c_int, *const libc::iovec, c_int, off64_t) -> ssize_t
        );
        if tracked(fd) == 0 {
            return unsafe { real(fd, iov, count, offset) };
        }
        let (buffers, used) = iovecs(iov, count);
        hook_write(fd, Some(offset), &buffers[..used], || unsafe {
            real(fd, iov, count, offset)
        })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn pwritev2(
        fd: c_int,
        iov: *const libc::iovec,
        count: c_int,
        offset: off64_t,
        flags: c_int,
    ) -> ssize_t {
        let real = real!(
            "pwritev2",
            unsafe extern "C" fn(c_int, *const libc::iovec, c_int, off64_t, c_int) -> ssize_t
        );
        if tracked(fd) == 0 {
            return unsafe { real(fd, iov, count, offset, flags) };
        }
        let (buffers, used) = iovecs(iov, count);
        let at = (offset >= 0 && flags & libc::RWF_APPEND == 0).then_some(offset);
        hook_write(fd, at, &buffers[..used], || unsafe {
            real(fd, iov, count, offset, flags)
        })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn ftruncate(fd: c_int, len: off_t) -> c_int {
        let real = real!("ftruncate", unsafe extern "C" fn(c_int, off_t) -> c_int);
        hook_fd_op(fd, format::TRUNCATE, &(len as u64).to_be_bytes(), || unsafe {
            real(fd, len)
        })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn ftruncate64(fd: c_int, len: off64_t) -> c_int {
        let real = real!("ftruncate64", unsafe extern "C" fn(c_int, off64_t) -> c_int);
        hook_fd_op(fd, format::TRUNCATE, &(len as u64).to_be_bytes(), || unsafe {
            real(fd, len)
        })
    }

    fn fallocate_fields(mode: c_int, offset: i64, len: i64) -> [u8; 20] {
        let mut fields = [0u8; 20];
        fields[..4].copy_from_slice(&(mode as u32).to_be_bytes());
        fields[4..12].copy_from_slice(&(offset as u64).to_be_bytes());
        fields[12..].copy_from_slice(&(len as u64).to_be_bytes());
        fields
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn fallocate(fd: c_int, mode: c_int, offset: off_t, len: off_t) -> c_int {
        let real = real!("fallocate", unsafe extern "C" fn(c_int, c_int, off_t, off_t) -> c_int);
        let fields = fallocate_fields(mode, offset, len);
        hook_fd_op(fd, format::FALLOCATE, &fields, || unsafe {
            real(fd, mode, offset, len)
        })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn fallocate64(fd: c_int, mode: c_int, offset: off64_t, len: off64_t) -> c_int {
        let real = real!(
            "fallocate64",
            unsafe extern "C" fn(c_int, c_int, off64_t, off64_t) -> c_int
        );
        let fields = fallocate_fields(mode, offset, len);
        hook_fd_op(fd, format::FALLOCATE, &fields, || unsafe {
            real(fd, mode, offset, len)
        })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn posix_fallocate(fd: c_int, offset: off_t, len: off_t) -> c_int {
        let real = real!("posix_fallocate", unsafe extern "C" fn(c_int, off_t, off_t) -> c_int);
        let fields = fallocate_fields(0, offset, len);
        hook_fd_op(fd, format::FALLOCATE, &fields, || unsafe { real(fd, offset, len) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn posix_fallocate64(fd: c_int, offset: off64_t, len: off64_t) -> c_int {
        let real = real!(
            "posix_fallocate64",
            unsafe extern "C" fn(c_int, off64_t, off64_t) -> c_int
        );
        let fields = fallocate_fields(0, offset, len);
        hook_fd_op(fd, format::FALLOCATE, &fields, || unsafe { real(fd, offset, len) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
        let real = real!("fsync", unsafe extern "C" fn(c_int) -> c_int);
        hook_fd_op(fd, format::SYNC, &[format::SYNC_FSYNC], || unsafe { real(fd) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
        let real = real!("fdatasync", unsafe extern "C" fn(c_int) -> c_int);
        hook_fd_op(fd, format::SYNC, &[format::SYNC_FDATASYNC], || unsafe { real(fd) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn sync_file_range(fd: c_int, offset: off64_t, len: off64_t, flags: c_uint) -> c_int {
        let real = real!(
            "sync_file_range",
            unsafe extern "C" fn(c_int, off64_t, off64_t, c_uint) -> c_int
        );
        hook_fd_op(fd, format::SYNC, &[format::SYNC_FILE_RANGE], || unsafe {
            real(fd, offset, len, flags)
        })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn sync() {
        let real = real!("sync", unsafe extern "C" fn());
        hook_sync_all(|| {
            unsafe { real() };
            0
        });
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn syncfs(fd: c_int) -> c_int {
        let real = real!("syncfs", unsafe extern "C" fn(c_int) -> c_int);
        hook_sync_all(|| unsafe { real(fd) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn rename(old: *const c_char, new: *const c_char) -> c_int {
        let real = real!("rename", unsafe extern "C" fn(*const c_char, *const c_char) -> c_int);
        hook_rename(libc::AT_FDCWD, old, libc::AT_FDCWD, new, || unsafe { real(old, new) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn renameat(
        old_dirfd: c_int,
        old: *const c_char,
        new_dirfd: c_int,
        new: *const c_char,
    ) -> c_int {
        let real = real!(
            "renameat",
            unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char) -> c_int
        );
        hook_rename(old_dirfd, old, new_dirfd, new, || unsafe {
            real(old_dirfd, old, new_dirfd, new)
        })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn renameat2(
        old_dirfd: c_int,
        old: *const c_char,
        new_dirfd: c_int,
        new: *const c_char,
        flags: c_uint,
    ) -> c_int {
        let real = real!(
            "renameat2",
            unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, c_uint) -> c_int
        );
        hook_rename(old_dirfd, old, new_dirfd, new, || unsafe {
            real(old_dirfd, old, new_dirfd, new, flags)
        })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
        let real = real!("unlink", unsafe extern "C" fn(*const c_char) -> c_int);
        hook_path_op(libc::AT_FDCWD, path, format::UNLINK, true, || unsafe { real(path) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
        let real = real!("unlinkat", unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int);
        let kind = if flags & libc::AT_REMOVEDIR != 0 {
            format::RMDIR
        } else {
            format::UNLINK
        };
        hook_path_op(dirfd, path, kind, true, || unsafe { real(dirfd, path, flags) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn rmdir(path: *const c_char) -> c_int {
        let real = real!("rmdir", unsafe extern "C" fn(*const c_char) -> c_int);
        hook_path_op(libc::AT_FDCWD, path, format::RMDIR, true, || unsafe { real(path) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn mkdir(path: *const c_char, mode: mode_t) -> c_int {
        let real = real!("mkdir", unsafe extern "C" fn(*const c_char, mode_t) -> c_int);
        hook_path_op(libc::AT_FDCWD, path, format::MKDIR, false, || unsafe {
            real(path, mode)
        })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn mkdirat(dirfd: c_int, path: *const c_char, mode: mode_t) -> c_int {
        let real = real!("mkdirat", unsafe extern "C" fn(c_int, *const c_char, mode_t) -> c_int);
        hook_path_op(dirfd, path, format::MKDIR, false, || unsafe { real(dirfd, path, mode) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn close(fd: c_int) -> c_int {
        let real = real!("close", unsafe extern "C" fn(c_int) -> c_int);
        if tracked(fd) == 0 {
            return unsafe { real(fd) };
        }
        let Some(_scope) = HookScope::enter() else {
            return unsafe { real(fd) };
        };
        // Untracked under the lock, before the number can be reused by an open.
        let _recorder = lock();
        set_tracked(fd, 0);
        unsafe { real(fd) }
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
        let real = real!("dup", unsafe extern "C" fn(c_int) -> c_int);
        hook_duplicate(fd, || unsafe { real(fd) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn dup2(fd: c_int, target: c_int) -> c_int {
        let real = real!("dup2", unsafe extern "C" fn(c_int, c_int) -> c_int);
        hook_duplicate(fd, || unsafe { real(fd, target) })
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn dup3(fd: c_int, target: c_int, flags: c_int) -> c_int {
        let real = real!("dup3", unsafe extern "C" fn(c_int, c_int, c_int) -> c_int);
        hook_duplicate(fd, || unsafe { real(fd, target, flags) })
    }

    type FcntlFn = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn fcntl(fd: c_int, command: c_int, argument: libc::c_ulong) -> c_int {
        let real = real!("fcntl", FcntlFn);
        if command == libc::F_DUPFD || command == libc::F_DUPFD_CLOEXEC {
            return hook_duplicate(fd, || unsafe { real(fd, command, argument) });
        }
        unsafe { real(fd, command, argument) }
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn fcntl64(fd: c_int, command: c_int, argument: libc::c_ulong) -> c_int {
        let real = real!("fcntl64", FcntlFn);
        if command == libc::F_DUPFD || command == libc::F_DUPFD_CLOEXEC {
            return hook_duplicate(fd, || unsafe { real(fd, command, argument) });
        }
        unsafe { real(fd, command, argument) }
    }

    type MmapFn = unsafe extern "C" fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void;

    fn refuse_shared_mapping(fd: c_int, protection: c_int, flags: c_int) {
        if tracked(fd) != FILE || protection & libc::PROT_WRITE == 0 || flags & libc::MAP_SHARED == 0 {
            return;
        }
        let Some(_scope) = HookScope::enter() else {
            return;
        };
        let recorder = lock();
        let inode = stat_fd(fd).unwrap_or_default();
        recorder.append(
            format::UNSUPPORTED,
            inode,
            b"a shared writable mmap: its writes are invisible to the recorder",
            &[],
        );
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn mmap(
        address: *mut c_void,
        len: size_t,
        protection: c_int,
        flags: c_int,
        fd: c_int,
        offset: off_t,
    ) -> *mut c_void {
        let real = real!("mmap", MmapFn);
        refuse_shared_mapping(fd, protection, flags);
        unsafe { real(address, len, protection, flags, fd, offset) }
    }

    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn mmap64(
        address: *mut c_void,
        len: size_t,
        protection: c_int,
        flags: c_int,
        fd: c_int,
        offset: off64_t,
    ) -> *mut c_void {
        let real = real!("mmap64", MmapFn);
        refuse_shared_mapping(fd, protection, flags);
        unsafe { real(address, len, protection, flags, fd, offset) }
    }
}
