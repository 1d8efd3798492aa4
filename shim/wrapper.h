/* Everything bindgen sees: the httpd and APR headers the module uses, plus the shim's
 * own declarations (APIs that are macros or variadic in C). */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <util_filter.h>
#include <util_script.h>
#include <apr_buckets.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_file_io.h>
#include <apr_thread_proc.h>
#include <apr_version.h>
#include <ap_listen.h>
#include <unixd.h>

#include "shim.h"
