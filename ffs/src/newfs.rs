//! newfs
/// opts
#[derive(Default)]
pub struct NewfsOptions {}
/// newfs
pub async fn newfs<D: crate::Disk>(_d: &D, _o: &NewfsOptions) -> crate::Result<()> { Ok(()) }
