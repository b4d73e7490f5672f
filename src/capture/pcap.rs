//! Writing frames as a classic pcap file.

use std::io::BufWriter;
use std::path::Path;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};

use super::{CaptureError, Frame, SNAP_LEN};

pub fn write(path: &Path, frames: &[Frame]) -> Result<(), CaptureError> {
    let err = |message: String| CaptureError::Write {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let header = PcapHeader {
        snaplen: SNAP_LEN as u32,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        ..PcapHeader::default()
    };
    let mut writer =
        PcapWriter::with_header(BufWriter::new(file), header).map_err(|e| err(e.to_string()))?;
    for frame in frames {
        let packet = PcapPacket::new(frame.at, frame.original_len as u32, &frame.data);
        writer
            .write_packet(&packet)
            .map_err(|e| err(e.to_string()))?;
    }
    use std::io::Write;
    writer.into_writer().flush().map_err(|e| err(e.to_string()))
}
