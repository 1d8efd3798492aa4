#ifndef WSGI_SHIM_H
#define WSGI_SHIM_H

#include <httpd.h>
#include <apr_buckets.h>
#include <apr_tables.h>

/* Logging: the message is always an argument of a constant "%s" format, never a format
 * string, and carries the module's index so `LogLevel wsgi:debug` applies. */
void wsgi_shim_log_rerror(const char *file, int line, int module_index, int level,
                          apr_status_t status, const request_rec *r, const char *msg);
void wsgi_shim_log_error(const char *file, int line, int module_index, int level,
                         apr_status_t status, const server_rec *s, const char *msg);

/* Whether a message at `level` would be written for this server (or request) by this module. */
int wsgi_shim_log_enabled(const server_rec *s, const request_rec *r, int module_index, int level);

/* apr_table_elts is a macro. */
const apr_table_entry_t *wsgi_shim_table_entries(const apr_table_t *t, int *count);

/* Bucket brigade macros. */
void wsgi_shim_brigade_append(apr_bucket_brigade *bb, apr_bucket *b);
int wsgi_shim_brigade_empty(apr_bucket_brigade *bb);

/* Appends a copy of `data`. Like apr_brigade_write without a flush function, except
 * that small writes always share 8 KB heap buffers: once a buffer is full,
 * apr_brigade_write gives every later write a heap bucket of its own. */
void wsgi_shim_brigade_copy(apr_bucket_brigade *bb, const char *data, apr_size_t len);

/* Steps through the buckets of `bb`: with *b NULL it starts at the first. Returns 1 with
 * the next bucket's bytes in *data and *len (none for metadata; *eos set for end of
 * stream), 0 past the last bucket, -1 if a bucket cannot be read without waiting. */
int wsgi_shim_brigade_next(apr_bucket_brigade *bb, apr_bucket **b, const char **data,
                           apr_size_t *len, int *eos);

/* mod_ssl's optional function; 0 when mod_ssl is not loaded. */
int wsgi_shim_is_https(conn_rec *c);

/* Server-wide facts that live in macros or globals. */
const char *wsgi_shim_server_root_relative(apr_pool_t *p, const char *path);

#endif
