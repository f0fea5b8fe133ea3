pub async fn check<D: crate::Disk>(_d: &D) -> Result<Vec<String>, crate::sb::SbError> { Ok(vec![]) }
