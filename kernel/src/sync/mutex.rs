//! An async mutex: the value moves to the guard while locked, so no lock is held in between.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex as StdMutex;

use super::{wait_for, WaitQueue};
use crate::{Proc, Result};

/// A mutex whose lock may be held across an `.await` (a vnode's I/O lock, `vn_lock`).
///
/// Waiters sleep on a [`WaitQueue`] and are woken one at a time on unlock. `T` moves into the
/// guard and back, so keep it small (put big state in a `Box`).
pub struct Mutex<T> {
    slot: StdMutex<Option<T>>,
    waiters: WaitQueue,
}

/// The lock of a [`Mutex`]; unlocks when dropped.
pub struct MutexGuard<'a, T> {
    m: &'a Mutex<T>,
    value: Option<T>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            slot: StdMutex::new(Some(value)),
            waiters: WaitQueue::new(),
        }
    }

    fn take(&self) -> Option<T> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.take().map(|v| MutexGuard {
            m: self,
            value: Some(v),
        })
    }

    /// `mutex_enter`: waits for the lock (not interruptible).
    pub async fn lock(&self) -> MutexGuard<'_, T> {
        let v = self.waiters.wait_for(|| self.take()).await;
        MutexGuard {
            m: self,
            value: Some(v),
        }
    }

    /// Waits for the lock as `p`; `EINTR` when `p` is exiting.
    pub async fn lock_sig(&self, p: &Proc) -> Result<MutexGuard<'_, T>> {
        let v = wait_for(p, &self.waiters, || self.take()).await?;
        Ok(MutexGuard {
            m: self,
            value: Some(v),
        })
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
            .as_ref()
            .expect("guard holds the value until dropped")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
            .as_mut()
            .expect("guard holds the value until dropped")
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        *self.m.slot.lock().unwrap_or_else(|e| e.into_inner()) = self.value.take();
        self.m.waiters.wake_one();
    }
}
