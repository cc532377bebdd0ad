//! Keeps libxml2 and libxmlsec1 from printing to stderr.
//!
//! Both libraries report errors by printing them, and the text they print
//! quotes the document (an unknown transform URI, a bad ID, element content):
//! attacker-controlled bytes straight into our logs. We route every channel to
//! a sink before samael touches a document:
//!
//! * libxmlsec1's error callback is replaced by a no-op (process-wide);
//! * libxml2's structured error handler is set to a no-op, and its generic
//!   error handler is pointed at `/dev/null`. libxml2 keeps these per thread,
//!   so they are set both as the default for threads created later
//!   (`xmlThrDef*`) and for the calling thread, once per thread.
//!
//! The generic handler is variadic in C, which stable Rust cannot define;
//! instead we keep libxml2's own default handler and give it a `FILE*` on
//! `/dev/null` as its context, which is what that handler writes to.
//!
//! This silences libxml2 for the whole process, which is fine: samael is the
//! only libxml2 user in provisor, and nothing reads those messages.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::sync::Once;

type XmlSecErrorsCallback = unsafe extern "C" fn(
    file: *const c_char,
    line: c_int,
    func: *const c_char,
    error_object: *const c_char,
    error_subject: *const c_char,
    reason: c_int,
    msg: *const c_char,
);
type XmlStructuredErrorFunc = unsafe extern "C" fn(user_data: *mut c_void, error: *mut c_void);

extern "C" {
    #[link_name = "xmlInitParser"]
    fn xml_init_parser();
    // libxmlsec1 (linked through samael)
    fn xmlSecErrorsSetCallback(callback: Option<XmlSecErrorsCallback>);
    // libxml2 (linked through samael's libxml dependency). The generic handler
    // argument is a pointer to a variadic function; we only ever pass NULL,
    // which selects libxml2's default handler.
    #[link_name = "xmlSetGenericErrorFunc"]
    fn xml_set_generic_error_func(ctx: *mut c_void, handler: *const c_void);
    #[link_name = "xmlThrDefSetGenericErrorFunc"]
    fn xml_thr_def_set_generic_error_func(ctx: *mut c_void, handler: *const c_void);
    #[link_name = "xmlSetStructuredErrorFunc"]
    fn xml_set_structured_error_func(ctx: *mut c_void, handler: Option<XmlStructuredErrorFunc>);
    #[link_name = "xmlThrDefSetStructuredErrorFunc"]
    fn xml_thr_def_set_structured_error_func(ctx: *mut c_void, handler: Option<XmlStructuredErrorFunc>);
}

unsafe extern "C" fn ignore_xmlsec_error(
    _file: *const c_char,
    _line: c_int,
    _func: *const c_char,
    _error_object: *const c_char,
    _error_subject: *const c_char,
    _reason: c_int,
    _msg: *const c_char,
) {
}

unsafe extern "C" fn ignore_structured_error(_user_data: *mut c_void, _error: *mut c_void) {}

/// `FILE*` on `/dev/null`, opened once and never closed, as a `usize` so it
/// can live in a static. Zero when `/dev/null` could not be opened.
static DEV_NULL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
static GLOBAL: Once = Once::new();

thread_local! {
    static THREAD_DONE: Cell<bool> = const { Cell::new(false) };
}

fn dev_null() -> *mut c_void {
    let file = *DEV_NULL.get_or_init(|| {
        // SAFETY: plain C string literals; fopen returns NULL on failure.
        let file = unsafe { libc::fopen(c"/dev/null".as_ptr(), c"w".as_ptr()) };
        file as usize
    });
    file as *mut c_void
}

/// Installs the sinks (idempotent, cheap after the first call on a thread).
/// Called at the top of every function that hands a document to samael.
pub(crate) fn silence_xml_libraries() {
    GLOBAL.call_once(|| {
        let sink = dev_null();
        // SAFETY: the callbacks have exactly the C signatures the libraries
        // expect and touch nothing; `sink` is a valid FILE* or NULL.
        unsafe {
            xml_init_parser();
            xmlSecErrorsSetCallback(Some(ignore_xmlsec_error));
            xml_thr_def_set_structured_error_func(std::ptr::null_mut(), Some(ignore_structured_error));
            if !sink.is_null() {
                xml_thr_def_set_generic_error_func(sink, std::ptr::null());
            }
        }
    });
    THREAD_DONE.with(|done| {
        if !done.get() {
            let sink = dev_null();
            // SAFETY: as above, for this thread's libxml2 state.
            unsafe {
                xml_set_structured_error_func(std::ptr::null_mut(), Some(ignore_structured_error));
                if !sink.is_null() {
                    xml_set_generic_error_func(sink, std::ptr::null());
                }
            }
            done.set(true);
        }
    });
}
