/* rawmsg.c — verbatim protobuf bytes through nanopb; see rawmsg.h.
 *
 * nanopb hands every field whose number the descriptor does not list to
 * the message's extension handlers, with the stream positioned after the
 * field's key. The handler below rebuilds that key and then takes all the
 * bytes left: the rest of the message, in order. Keys are rebuilt in
 * their shortest form, which is how every encoder writes them. */
#include "rawmsg.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <string.h>

#define pctl_raw_FIELDLIST(X, a) X(a, CALLBACK, OPTIONAL, EXTENSION, extensions, 1)
#define pctl_raw_CALLBACK pb_default_field_callback
#define pctl_raw_DEFAULT NULL
extern const pb_msgdesc_t pctl_raw_t_msg;
PB_BIND(pctl_raw, pctl_raw_t, AUTO)

static bool raw_decode(pb_istream_t *stream, pb_extension_t *ext, uint32_t tag, pb_wire_type_t wire_type)
{
    pctl_raw_t *r = ext->dest;
    size_t left = stream->bytes_left;
    if (pctl_buf_tag(&r->in, tag, (int)wire_type) != 0 || pctl_buf_reserve(&r->in, left) != 0)
        PB_RETURN_ERROR(stream, "out of memory or over the message size limit");
    if (left && !pb_read(stream, r->in.data + r->in.len, left))
        return false;
    r->in.len += left;
    return true;
}

static bool raw_encode(pb_ostream_t *stream, const pb_extension_t *ext)
{
    const pctl_raw_t *r = ext->dest;
    return r->out_len == 0 || pb_write(stream, r->out_data, r->out_len);
}

static const pb_extension_type_t raw_type = {raw_decode, raw_encode, NULL};

void pctl_raw_init(pctl_raw_t *r, size_t limit)
{
    memset(r, 0, sizeof(*r));
    r->ext.type = &raw_type;
    r->ext.dest = r;
    r->extensions = &r->ext;
    pctl_buf_init(&r->in, limit);
}

void pctl_raw_dispose(pctl_raw_t *r)
{
    pctl_buf_dispose(&r->in);
}

void pctl_raw_set(pctl_raw_t *r, const uint8_t *data, size_t len)
{
    r->out_data = data;
    r->out_len = len;
}

void pctl_raw_clear_in(pctl_raw_t *r)
{
    r->in.len = 0;
}

void pctl_raw_method(pl_method_t *m, const char *path, pl_call_shape_t shape)
{
    memset(m, 0, sizeof(*m));
    m->path = path;
    const char *slash = strrchr(path, '/');
    m->name = slash ? slash + 1 : path;
    m->shape = shape;
    m->request = &pctl_raw_t_msg;
    m->request_size = sizeof(pctl_raw_t);
    m->response = &pctl_raw_t_msg;
    m->response_size = sizeof(pctl_raw_t);
}
