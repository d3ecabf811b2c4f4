/* SPDX-License-Identifier: Apache-2.0 */
/* Streaming noise suppression: front end + early-exit network, see nsn_stream.h. */
#include "nsn_stream.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef NSN_STREAM_NO_PROFILE
#include "nsn_port.h"
#define NSN_STREAM_BEGIN() nsn_port_instr_begin()
#define NSN_STREAM_END(t0) nsn_port_instr_end(t0)
#else
#define NSN_STREAM_BEGIN() ((uint64_t)0)
#define NSN_STREAM_END(t0) ((void)(t0), (uint64_t)0)
#endif

/* The stack probe (NSN_STACK_BEGIN/END): nsn_app_util.h. */
#include "nsn_app_util.h"

nsn_stream_status nsn_stream_reset(nsn_stream_t *s)
{
    /* The front end works in the network's quantization: features in, mask out. */
    static const nsn_frontend_qparams feature_q = {NSN_FEATURES_SCALE, NSN_FEATURES_ZERO_POINT};
    static const nsn_frontend_qparams mask_q = {NSN_MASK_SCALE, NSN_MASK_ZERO_POINT};
    if (s == NULL)
    {
        return NSN_STREAM_ERR_ARGUMENT;
    }
    if (nsn_frontend_init(&s->frontend, &feature_q, &mask_q) != NSN_FRONTEND_OK)
    {
        return NSN_STREAM_ERR_FRONTEND;
    }
    if (nsn_model_init(&s->model) != NSN_OK)
    {
        return NSN_STREAM_ERR_NETWORK;
    }
    memset(s->features, 0, sizeof s->features);
    memset(s->mask, 0, sizeof s->mask);
    s->steps = 0;
    s->last_exit = -1;
    memset(&s->counts, 0, sizeof s->counts);
    return NSN_STREAM_OK;
}

nsn_stream_status nsn_stream_init(nsn_stream_t *s)
{
#ifndef NSN_STREAM_NO_PROFILE
    nsn_port_init();
#endif
    return nsn_stream_reset(s);
}

nsn_stream_status nsn_stream_process(nsn_stream_t *s, const int16_t in[NSN_STREAM_HOP],
                                     int exit_id, int16_t out[NSN_STREAM_HOP])
{
    nsn_frontend_status analyzed;
    nsn_stream_status status = NSN_STREAM_OK;
    uint64_t t0;

    if (s == NULL || in == NULL || out == NULL || exit_id < 0 || exit_id >= NSN_NUM_EXITS)
    {
        return NSN_STREAM_ERR_ARGUMENT;
    }

    t0 = NSN_STREAM_BEGIN();
    analyzed = nsn_frontend_analyze_s16(&s->frontend, in, s->features);
    s->counts.analyze = NSN_STREAM_END(t0);

    s->counts.network = 0;
    s->counts.network_stack = 0;
    if (analyzed == NSN_FRONTEND_OK)
    {
        nsn_status stepped;
        const uintptr_t stack_top = NSN_STACK_BEGIN();
        t0 = NSN_STREAM_BEGIN();
        stepped = nsn_model_step(&s->model, s->features, exit_id, s->mask);
        s->counts.network = NSN_STREAM_END(t0);
        s->counts.network_stack = NSN_STACK_END(stack_top);
        if (stepped != NSN_OK)
        {
            /* No usable mask: mute this frame (mask = real 0, the minimum gain), but still
             * synthesize so that the front end stays in step. */
            memset(s->mask, NSN_MASK_ZERO_POINT, sizeof s->mask);
            status = NSN_STREAM_ERR_NETWORK;
        }
        s->steps += 1;
        s->last_exit = exit_id;
    }
    else
    {
        status = NSN_STREAM_PRIMING;
    }

    t0 = NSN_STREAM_BEGIN();
    (void)nsn_frontend_synthesize_s16(&s->frontend, s->mask, out);
    s->counts.synthesize = NSN_STREAM_END(t0);
    return status;
}

void nsn_stream_flush(nsn_stream_t *s, int16_t out[NSN_FRONTEND_TAIL])
{
    if (s != NULL && out != NULL)
    {
        nsn_frontend_flush_s16(&s->frontend, out);
    }
}

int nsn_stream_exit_id(const char *name)
{
    int k;
    if (name == NULL)
    {
        return -1;
    }
    for (k = 0; k < NSN_NUM_EXITS; ++k)
    {
        if (strcmp(nsn_exit_names[k], name) == 0)
        {
            return k;
        }
    }
    return -1;
}
