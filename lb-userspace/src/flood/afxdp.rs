//! A transmit-only AF_XDP socket (copy mode): the flood's sender on kernels that refuse
//! BPF_PROG_TEST_RUN with live frames (lockdown). Frames are written into a UMEM that
//! this socket owns, handed to the kernel on the TX ring, and kicked with `sendto`; the
//! completion ring gives their buffers back.
//!
//! Hand-written on libc: the ring protocol is four shared counters and two arrays
//! (the kernel's AF_XDP ABI), and the crates that wrap it pull in libxdp or
//! a licence the workspace does not use.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// UMEM chunk: one frame each (the flood's frames are under 600 bytes).
const CHUNK: u32 = 2048;
/// Chunks in the UMEM, and entries of each ring (powers of two).
const CHUNKS: u32 = 4096;
const RING: u32 = 2048;

/// One mmap'ed region, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(fd: Option<i32>, len: usize, offset: libc::off_t) -> io::Result<Self> {
        let (flags, fd) = match fd {
            Some(fd) => (libc::MAP_SHARED | libc::MAP_POPULATE, fd),
            None => (
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
            ),
        };
        // SAFETY: a fresh mapping chosen by the kernel; checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(p.cast())
            .map(|ptr| Self { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned null"))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the region mmap returned.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A ring shared with the kernel: producer and consumer indices run freely and are
/// masked into the descriptor array.
struct Ring {
    map: Mapping,
    producer: usize,
    consumer: usize,
    desc: usize,
}

impl Ring {
    fn new(fd: i32, off: &libc::xdp_ring_offset, entry: usize, pgoff: u64) -> io::Result<Self> {
        let len = off.desc as usize + RING as usize * entry;
        Ok(Self {
            map: Mapping::new(Some(fd), len, pgoff as libc::off_t)?,
            producer: off.producer as usize,
            consumer: off.consumer as usize,
            desc: off.desc as usize,
        })
    }
    fn index(&self, at: usize) -> &AtomicU32 {
        // SAFETY: the kernel's offsets of an aligned u32 inside the mapping; the
        // mapping lives as long as `self`.
        unsafe { &*self.map.ptr.as_ptr().add(at).cast::<AtomicU32>() }
    }
    fn entry<T>(&self, i: u32) -> *mut T {
        // SAFETY: `i & (RING - 1)` indexes the array of RING entries of T.
        unsafe {
            self.map
                .ptr
                .as_ptr()
                .add(self.desc)
                .cast::<T>()
                .add((i & (RING - 1)) as usize)
        }
    }
}

fn sockopt<T>(fd: i32, name: i32, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a live value of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            name,
            (v as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A bound AF_XDP socket with its UMEM, TX and completion rings.
pub struct XskTx {
    fd: OwnedFd,
    umem: Mapping,
    tx: Ring,
    cq: Ring,
    free: Vec<u64>,
}

// SAFETY: the socket and its mappings are used by one thread at a time (`&mut self`).
unsafe impl Send for XskTx {}

impl XskTx {
    /// Binds to `queue` of `ifindex` in the calling thread's namespace.
    pub fn new(ifindex: u32, queue: u32) -> io::Result<Self> {
        let ctx = |what: &'static str| {
            move |e: io::Error| io::Error::new(e.kind(), format!("AF_XDP {what}: {e}"))
        };
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(ctx("socket")(io::Error::last_os_error()));
        }
        // SAFETY: a descriptor we just opened and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem = Mapping::new(None, (CHUNK * CHUNKS) as usize, 0).map_err(ctx("UMEM mmap"))?;
        let reg = libc::xdp_umem_reg {
            addr: umem.ptr.as_ptr() as u64,
            len: umem.len as u64,
            chunk_size: CHUNK,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        sockopt(raw, libc::XDP_UMEM_REG, &reg).map_err(ctx("UMEM registration"))?;
        // The fill ring is never used (nothing is received) but bind wants both.
        for name in [
            libc::XDP_UMEM_FILL_RING,
            libc::XDP_UMEM_COMPLETION_RING,
            libc::XDP_TX_RING,
        ] {
            sockopt(raw, name, &RING).map_err(ctx("ring size"))?;
        }
        // SAFETY: zeroed plain data, filled by getsockopt.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off` is writable for `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&raw mut off).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(ctx("ring offsets")(io::Error::last_os_error()));
        }
        let tx = Ring::new(
            raw,
            &off.tx,
            size_of::<libc::xdp_desc>(),
            libc::XDP_PGOFF_TX_RING as u64,
        )
        .map_err(ctx("TX ring mmap"))?;
        let cq = Ring::new(
            raw,
            &off.cr,
            size_of::<u64>(),
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
        )
        .map_err(ctx("completion ring mmap"))?;
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: libc::XDP_COPY,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: a valid sockaddr_xdp of the length passed.
        let rc = unsafe {
            libc::bind(
                raw,
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(ctx("bind (copy mode)")(io::Error::last_os_error()));
        }
        Ok(Self {
            fd,
            umem,
            tx,
            cq,
            free: (0..u64::from(CHUNKS))
                .map(|i| i * u64::from(CHUNK))
                .collect(),
        })
    }

    /// Takes back the buffers of frames the kernel has sent; returns how many.
    pub fn complete(&mut self) -> u64 {
        let prod = self.cq.index(self.cq.producer).load(Ordering::Acquire);
        let cons_idx = self.cq.index(self.cq.consumer);
        let cons = cons_idx.load(Ordering::Relaxed);
        let n = prod.wrapping_sub(cons);
        for i in 0..n {
            // SAFETY: entries between consumer and producer are the kernel's to read.
            let addr = unsafe { self.cq.entry::<u64>(cons.wrapping_add(i)).read() };
            self.free.push(addr);
        }
        cons_idx.store(prod, Ordering::Release);
        u64::from(n)
    }

    /// Queues up to `max` frames, each written by `fill` into a chunk (it returns the
    /// frame's length), then kicks the kernel. Returns how many were queued.
    pub fn send(&mut self, max: u32, mut fill: impl FnMut(&mut [u8]) -> usize) -> io::Result<u32> {
        self.complete();
        let prod_idx = self.tx.index(self.tx.producer);
        let prod = prod_idx.load(Ordering::Relaxed);
        let cons = self.tx.index(self.tx.consumer).load(Ordering::Acquire);
        let room = RING - prod.wrapping_sub(cons);
        let n = max.min(room).min(self.free.len() as u32);
        for i in 0..n {
            let addr = self.free.pop().unwrap_or_default();
            // SAFETY: a free chunk of CHUNK bytes inside the UMEM, not in any ring.
            let chunk = unsafe {
                std::slice::from_raw_parts_mut(
                    self.umem.ptr.as_ptr().add(addr as usize),
                    CHUNK as usize,
                )
            };
            let len = fill(chunk).min(CHUNK as usize) as u32;
            let d = libc::xdp_desc {
                addr,
                len,
                options: 0,
            };
            // SAFETY: a slot between producer and consumer + RING: ours to write.
            unsafe {
                self.tx
                    .entry::<libc::xdp_desc>(prod.wrapping_add(i))
                    .write(d)
            };
        }
        prod_idx.store(prod.wrapping_add(n), Ordering::Release);
        self.kick()?;
        Ok(n)
    }

    /// Frames queued and not yet completed.
    pub fn outstanding(&self) -> u32 {
        CHUNKS - self.free.len() as u32
    }

    /// In copy mode the kernel transmits only inside sendmsg, a batch per call.
    pub fn kick(&self) -> io::Result<()> {
        // SAFETY: sendto with no data on our socket.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            // Busy device or a full batch: the frames stay queued for the next kick.
            match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS) => {}
                _ => return Err(io::Error::new(e.kind(), format!("AF_XDP sendto: {e}"))),
            }
        }
        Ok(())
    }
}
