//! DIMSE command sets (PS3.7 §9.3, §E): the few small, flat data sets that say "store this
//! instance", "echo", and their responses. They are always Implicit VR Little Endian with
//! group 0000 only, so they are read and written here directly rather than through a
//! general-purpose parser.

/// C-STORE-RQ.
pub const C_STORE_RQ: u16 = 0x0001;
/// C-STORE-RSP.
pub const C_STORE_RSP: u16 = 0x8001;
/// C-ECHO-RQ.
pub const C_ECHO_RQ: u16 = 0x0030;
/// C-ECHO-RSP.
pub const C_ECHO_RSP: u16 = 0x8030;

/// CommandDataSetType: no data set follows.
const NO_DATA_SET: u16 = 0x0101;

/// The largest command set accepted (real ones are a few hundred bytes).
pub const MAX_COMMAND: usize = 64 * 1024;

/// DIMSE status codes the node sends (PS3.4 Annex B.2.3 for C-STORE).
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: out of resources (the spool is full, or the instance too large).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: data set does not match SOP class.
    pub const DATA_SET_MISMATCH: u16 = 0xA900;
    /// Error: cannot understand (the data set does not parse).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Refused: SOP class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Unrecognized operation.
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;

    /// Success and warnings: the peer kept the instance.
    pub fn is_stored(status: u16) -> bool {
        status == SUCCESS || status == 0x0001 || (status & 0xF000) == 0xB000
    }
}

/// A command set, the fields the node uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    pub field: u16,
    /// MessageID (requests) or MessageIDBeingRespondedTo (responses).
    pub message_id: u16,
    pub sop_class: String,
    pub sop_instance: String,
    pub has_data_set: bool,
    /// Responses only.
    pub status: Option<u16>,
    /// Responses only: ErrorComment (0000,0902), at most 64 characters.
    pub error_comment: Option<String>,
}

/// Why a command set could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("the command set is truncated at byte {0}")]
    Truncated(usize),
    #[error("the command set holds element ({0:04X},{1:04X}) outside group 0000")]
    NotCommandGroup(u16, u16),
    #[error("the command set has no CommandField (0000,0100)")]
    NoCommandField,
}

impl Command {
    /// A C-STORE-RQ for an instance that follows as a data set.
    pub fn store_request(message_id: u16, sop_class: &str, sop_instance: &str) -> Command {
        Command {
            field: C_STORE_RQ,
            message_id,
            sop_class: sop_class.into(),
            sop_instance: sop_instance.into(),
            has_data_set: true,
            ..Default::default()
        }
    }

    /// The response to this request with `status` (and a comment for failures).
    pub fn response(&self, status: u16, comment: Option<&str>) -> Command {
        Command {
            field: self.field | 0x8000,
            message_id: self.message_id,
            sop_class: self.sop_class.clone(),
            sop_instance: self.sop_instance.clone(),
            has_data_set: false,
            status: Some(status),
            // LO holds 64 characters; control characters have no place in it.
            error_comment: comment.map(|c| {
                c.chars()
                    .filter(|ch| !ch.is_control() && *ch != '\\')
                    .take(64)
                    .collect()
            }),
        }
    }

    /// Encodes the command set in Implicit VR Little Endian, group length first.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let mut put = |element: u16, value: &[u8], pad: u8| {
            let len = value.len() + value.len() % 2;
            body.extend_from_slice(&0u16.to_le_bytes());
            body.extend_from_slice(&element.to_le_bytes());
            body.extend_from_slice(&(len as u32).to_le_bytes());
            body.extend_from_slice(value);
            if value.len() % 2 == 1 {
                body.push(pad);
            }
        };
        // Elements in ascending tag order.
        if !self.sop_class.is_empty() {
            put(0x0002, self.sop_class.as_bytes(), 0);
        }
        put(0x0100, &self.field.to_le_bytes(), 0);
        let is_response = self.field & 0x8000 != 0;
        if is_response {
            put(0x0120, &self.message_id.to_le_bytes(), 0);
        } else {
            put(0x0110, &self.message_id.to_le_bytes(), 0);
        }
        if self.field == C_STORE_RQ {
            // Priority: medium.
            put(0x0700, &0u16.to_le_bytes(), 0);
        }
        put(
            0x0800,
            &(if self.has_data_set { 0x0000u16 } else { NO_DATA_SET }).to_le_bytes(),
            0,
        );
        if let Some(status) = self.status {
            put(0x0900, &status.to_le_bytes(), 0);
        }
        if let Some(comment) = self.error_comment.as_deref().filter(|c| !c.is_empty()) {
            put(0x0902, comment.as_bytes(), b' ');
        }
        if !self.sop_instance.is_empty() {
            put(0x1000, self.sop_instance.as_bytes(), 0);
        }
        let mut out = Vec::with_capacity(body.len() + 12);
        out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Reads a command set (Implicit VR Little Endian).
    pub fn decode(bytes: &[u8]) -> Result<Command, CommandError> {
        let mut command = Command::default();
        let mut field = None;
        let mut data_set_type = NO_DATA_SET;
        let mut at = 0;
        while at < bytes.len() {
            let header = bytes.get(at..at + 8).ok_or(CommandError::Truncated(at))?;
            let group = u16::from_le_bytes([header[0], header[1]]);
            let element = u16::from_le_bytes([header[2], header[3]]);
            let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
            let value = bytes
                .get(at + 8..(at + 8).saturating_add(len))
                .ok_or(CommandError::Truncated(at))?;
            if group != 0 {
                return Err(CommandError::NotCommandGroup(group, element));
            }
            let text = || String::from_utf8_lossy(value).trim_end_matches(['\0', ' ']).to_string();
            let short = || (value.len() >= 2).then(|| u16::from_le_bytes([value[0], value[1]]));
            match element {
                0x0002 => command.sop_class = text(),
                0x0100 => field = short(),
                0x0110 | 0x0120 => command.message_id = short().unwrap_or(0),
                0x0800 => data_set_type = short().unwrap_or(NO_DATA_SET),
                0x0900 => command.status = short(),
                0x0902 => command.error_comment = Some(text()),
                0x1000 => command.sop_instance = text(),
                _ => {}
            }
            at += 8 + len;
        }
        command.field = field.ok_or(CommandError::NoCommandField)?;
        command.has_data_set = data_set_type != NO_DATA_SET;
        Ok(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_round_trips_with_its_group_length() {
        let request = Command::store_request(7, "1.2.840.10008.5.1.4.1.1.1", "1.2.3.45");
        let bytes = request.encode();
        assert_eq!(
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            bytes.len() - 12
        );
        assert_eq!(bytes.len() % 2, 0);
        assert_eq!(Command::decode(&bytes).unwrap(), request);
        let response = request.response(
            status::CANNOT_UNDERSTAND,
            Some("bad\nfile \\ with a very long explanation that goes past sixty-four characters"),
        );
        let back = Command::decode(&response.encode()).unwrap();
        assert_eq!(
            (back.field, back.message_id, back.status, back.has_data_set),
            (C_STORE_RSP, 7, Some(0xC000), false)
        );
        let comment = back.error_comment.unwrap();
        assert!(
            comment.len() <= 64 && !comment.contains('\n') && !comment.contains('\\'),
            "{comment}"
        );
    }

    #[test]
    fn a_broken_command_is_an_error_not_a_panic() {
        let bytes = Command::store_request(1, "1.2", "3.4").encode();
        for cut in 1..bytes.len() {
            let _ = Command::decode(&bytes[..cut]);
        }
        assert_eq!(
            Command::decode(&bytes[..bytes.len() - 3]),
            Err(CommandError::Truncated(bytes.len() - 12))
        );
        let mut foreign = bytes.clone();
        foreign[12] = 8;
        assert!(matches!(
            Command::decode(&foreign),
            Err(CommandError::NotCommandGroup(8, _))
        ));
        assert_eq!(Command::decode(&[]), Err(CommandError::NoCommandField));
    }
}
