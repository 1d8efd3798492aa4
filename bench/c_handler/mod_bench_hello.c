/* The ceiling for any Apache content handler: fixed bytes from memory, no Python. */
#include <string.h>
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"

static char big[65536]; /* SetHandler bench-64k: the same 64 KiB of 'x' as apps/big.wsgi */

static int bench_handler(request_rec *r)
{
    int is_big = r->handler && !strcmp(r->handler, "bench-64k");
    if (!r->handler || (!is_big && strcmp(r->handler, "bench-hello"))) return DECLINED;
    ap_set_content_type(r, "text/plain");
    if (is_big) {
        ap_set_content_length(r, sizeof big);
        if (!r->header_only) ap_rwrite(big, sizeof big, r);
    } else {
        ap_set_content_length(r, 12); /* SetHandler bench-hello: as apps/hello.wsgi */
        if (!r->header_only) ap_rputs("Hello World\n", r);
    }
    return OK;
}
static void register_hooks(apr_pool_t *p)
{
    memset(big, 'x', sizeof big);
    ap_hook_handler(bench_handler, NULL, NULL, APR_HOOK_MIDDLE);
}
module AP_MODULE_DECLARE_DATA bench_hello_module = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, register_hooks};
