//! Arrow IPC streams, the form Spark Connect carries record batches in.

use tarn_lake::arrow::error::ArrowError;
use tarn_lake::arrow::ipc::reader::StreamReader;
use tarn_lake::arrow::ipc::writer::StreamWriter;
use tarn_lake::arrow::record_batch::RecordBatch;

pub fn encode_stream(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, batch.schema_ref())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

pub fn decode_stream(bytes: &[u8]) -> Result<Vec<RecordBatch>, ArrowError> {
    StreamReader::try_new(std::io::Cursor::new(bytes), None)?.collect()
}
