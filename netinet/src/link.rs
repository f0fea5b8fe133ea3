//! AF_LINK (`linkdomain`, NetBSD's `link_proto.c`): datagram sockets that carry only the
//! interface ioctls (`ifconfig` asks one for the link address with `SIOCGLIFADDR`).

use std::any::Any;
use std::sync::Arc;

use kernel::abi::{Stat, NODEV, S_IFSOCK};
use kernel::file::{File, Filt, Filter, Iov, PollEvents, Selector};
use kernel::{BoxFut, Errno, Result};
use net::{Ctx, Domain, ProtoSock, Received};

use crate::Stack;

/// `AF_LINK`.
pub const AF_LINK: i32 = 18;

/// `linkdomain`.
pub struct LinkDomain {
    /// The stack whose interfaces the ioctls reach.
    pub stack: Arc<Stack>,
}

impl Domain for LinkDomain {
    fn family(&self) -> i32 {
        AF_LINK
    }

    fn name(&self) -> &'static str {
        "link"
    }

    fn create(&self, _cx: &Ctx<'_>, ty: i32, proto: i32) -> Result<Arc<dyn ProtoSock>> {
        if ty != 2 {
            return Err(Errno::EPROTOTYPE);
        }
        if proto != 0 {
            return Err(Errno::EPROTONOSUPPORT);
        }
        Ok(Arc::new(LinkSock {
            stack: self.stack.clone(),
        }))
    }
}

/// One AF_LINK socket.
pub struct LinkSock {
    stack: Arc<Stack>,
}

impl ProtoSock for LinkSock {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn ty(&self) -> i32 {
        2
    }

    fn shutdown(&self, _how: i32) -> Result<()> {
        Err(Errno::EOPNOTSUPP)
    }

    fn send<'a>(
        &'a self,
        _cx: &'a Ctx<'a>,
        _iov: &'a [Iov],
        _to: Option<Vec<u8>>,
        _control: Vec<u8>,
        _flags: i32,
        _nb: bool,
    ) -> BoxFut<'a, (u64, Result<()>)> {
        Box::pin(async { (0, Err(Errno::EOPNOTSUPP)) })
    }

    fn recv<'a>(
        &'a self,
        _cx: &'a Ctx<'a>,
        _iov: &'a [Iov],
        _flags: i32,
        _nb: bool,
    ) -> BoxFut<'a, Result<Received>> {
        Box::pin(async { Err(Errno::EOPNOTSUPP) })
    }

    fn sockaddr(&self) -> Result<Vec<u8>> {
        Err(Errno::EOPNOTSUPP)
    }

    fn peeraddr(&self) -> Result<Vec<u8>> {
        Err(Errno::EOPNOTSUPP)
    }

    fn setopt(&self, _cx: &Ctx<'_>, _level: i32, _name: i32, _v: &[u8]) -> Result<()> {
        Err(Errno::ENOPROTOOPT)
    }

    fn getopt(&self, _cx: &Ctx<'_>, _level: i32, _name: i32) -> Result<Vec<u8>> {
        Err(Errno::ENOPROTOOPT)
    }

    fn ioctl(&self, _fp: &File, _com: u32, _data: &mut [u8]) -> Result<()> {
        Err(Errno::EOPNOTSUPP)
    }

    fn ioctl_mem<'a>(
        &'a self,
        cx: Ctx<'a>,
        com: u32,
        data: &'a mut [u8],
    ) -> Option<BoxFut<'a, Result<()>>> {
        crate::ioctl::socket_ioctl_mem(&self.stack, cx, AF_LINK, com, data)
    }

    fn poll(&self, _events: PollEvents, _sel: Option<&mut Selector>) -> PollEvents {
        0
    }

    fn filter(&self, _filter: Filter, _sel: Option<&mut Selector>) -> Result<Filt> {
        Ok(Filt {
            ready: false,
            data: 0,
            eof: false,
        })
    }

    fn stat(&self) -> Result<Stat> {
        Ok(Stat {
            dev: NODEV,
            mode: S_IFSOCK,
            ..Stat::default()
        })
    }

    fn close(&self) {}
}
