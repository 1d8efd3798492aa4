/* The few httpd/APR APIs that Rust cannot call directly: macros and variadic functions. */
#include <string.h>

#include "shim.h"

#include <http_config.h>
#include <http_log.h>
#include <apr_optional.h>

void wsgi_shim_log_rerror(const char *file, int line, int module_index, int level,
                          apr_status_t status, const request_rec *r, const char *msg)
{
    ap_log_rerror_(file, line, module_index, level, status, r, "%s", msg);
}

void wsgi_shim_log_error(const char *file, int line, int module_index, int level,
                         apr_status_t status, const server_rec *s, const char *msg)
{
    ap_log_error_(file, line, module_index, level, status, s, "%s", msg);
}

int wsgi_shim_log_enabled(const server_rec *s, const request_rec *r, int module_index, int level)
{
    if (r != NULL)
        return APLOG_R_MODULE_IS_LEVEL(r, module_index, level);
    return APLOG_MODULE_IS_LEVEL(s, module_index, level);
}

const apr_table_entry_t *wsgi_shim_table_entries(const apr_table_t *t, int *count)
{
    const apr_array_header_t *arr = apr_table_elts(t);
    *count = arr->nelts;
    return (const apr_table_entry_t *)arr->elts;
}

void wsgi_shim_brigade_append(apr_bucket_brigade *bb, apr_bucket *b)
{
    APR_BRIGADE_INSERT_TAIL(bb, b);
}

int wsgi_shim_brigade_empty(apr_bucket_brigade *bb)
{
    return APR_BRIGADE_EMPTY(bb);
}

void wsgi_shim_brigade_copy(apr_bucket_brigade *bb, const char *data, apr_size_t len)
{
    apr_bucket *e = APR_BRIGADE_LAST(bb);
    char *buf;

    if (len > APR_BUCKET_BUFF_SIZE) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_heap_create(data, len, NULL, bb->bucket_alloc));
        return;
    }
    if (!APR_BRIGADE_EMPTY(bb) && APR_BUCKET_IS_HEAP(e)) {
        apr_bucket_heap *h = e->data;
        apr_size_t used = (apr_size_t)e->start + e->length;
        if (h->refcount.refcount == 1 && h->alloc_len - used >= len) {
            memcpy(h->base + used, data, len);
            e->length += len;
            return;
        }
    }
    buf = apr_bucket_alloc(APR_BUCKET_BUFF_SIZE, bb->bucket_alloc);
    memcpy(buf, data, len);
    e = apr_bucket_heap_create(buf, APR_BUCKET_BUFF_SIZE, apr_bucket_free, bb->bucket_alloc);
    e->length = len;
    APR_BRIGADE_INSERT_TAIL(bb, e);
}

int wsgi_shim_brigade_next(apr_bucket_brigade *bb, apr_bucket **b, const char **data,
                           apr_size_t *len, int *eos)
{
    *b = *b == NULL ? APR_BRIGADE_FIRST(bb) : APR_BUCKET_NEXT(*b);
    if (*b == APR_BRIGADE_SENTINEL(bb))
        return 0;
    *eos = APR_BUCKET_IS_EOS(*b);
    *data = NULL;
    *len = 0;
    if (APR_BUCKET_IS_METADATA(*b))
        return 1;
    return apr_bucket_read(*b, data, len, APR_NONBLOCK_READ) == APR_SUCCESS ? 1 : -1;
}

APR_DECLARE_OPTIONAL_FN(int, ssl_is_https, (conn_rec *));

int wsgi_shim_is_https(conn_rec *c)
{
    APR_OPTIONAL_FN_TYPE(ssl_is_https) *is_https = APR_RETRIEVE_OPTIONAL_FN(ssl_is_https);
    return is_https != NULL && is_https(c);
}

const char *wsgi_shim_server_root_relative(apr_pool_t *p, const char *path)
{
    return ap_server_root_relative(p, path);
}
