//! DIMSE command sets, as the node reads them off the network (C-ECHO-RQ and C-STORE-RQ on
//! its SCP, C-STORE-RSP in its sender): any bytes give a command or an error — no panic.
//! What decodes can be answered: the response encodes, and those bytes decode again.
#![no_main]
use hipfrac_node::dimse::{status, Command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Command::decode(data) {
        let response = request.response(status::CANNOT_UNDERSTAND, request.error_comment.as_deref());
        let back = Command::decode(&response.encode()).expect("an encoded response decodes");
        assert_eq!(
            (back.field, back.message_id, back.status, back.has_data_set),
            (response.field, response.message_id, response.status, false)
        );
    }
});
