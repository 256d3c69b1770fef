/* Layout facts of the ggml types that src/ggml/sys.rs mirrors, printed one per line:
 *   size NAME N          sizeof the type
 *   offset NAME.FIELD N  offsetof the field
 *   fsize NAME.FIELD N   sizeof the field
 *   value NAME N         a constant or enumerator
 * tests/ggml_layout.rs compiles this against the pinned ggml headers, runs it and compares every line with
 * the Rust side. Keep the lists here in the order of sys.rs. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "ggml.h"
#include "ggml-backend.h"
#include "ggml-backend-impl.h"
#include "ggml-impl.h"

#define SIZE(T) printf("size %s %zu\n", #T, sizeof(T))
#define STRUCT(S) printf("size %s %zu\n", #S, sizeof(struct S))
#define FIELD(S, F)                                                            \
    printf("offset %s.%s %zu\n", #S, #F, offsetof(struct S, F));              \
    printf("fsize %s.%s %zu\n", #S, #F, sizeof(((struct S *) 0)->F))
#define VALUE(V) printf("value %s %lld\n", #V, (long long) (V))

/* ggml-impl.h's static helpers reference ggml_abort; nothing here calls it, but the program links without ggml. */
void ggml_abort(const char * file, int line, const char * fmt, ...) {
    (void) file;
    (void) line;
    (void) fmt;
    abort();
}

int main(void) {
    /* types */
    SIZE(ggml_guid);

    STRUCT(ggml_tensor);
    FIELD(ggml_tensor, type);
    FIELD(ggml_tensor, buffer);
    FIELD(ggml_tensor, ne);
    FIELD(ggml_tensor, nb);
    FIELD(ggml_tensor, op);
    FIELD(ggml_tensor, op_params);
    FIELD(ggml_tensor, flags);
    FIELD(ggml_tensor, src);
    FIELD(ggml_tensor, view_src);
    FIELD(ggml_tensor, view_offs);
    FIELD(ggml_tensor, data);
    FIELD(ggml_tensor, name);
    FIELD(ggml_tensor, extra);
    FIELD(ggml_tensor, padding);

    STRUCT(ggml_hash_set);
    FIELD(ggml_hash_set, size);
    FIELD(ggml_hash_set, used);
    FIELD(ggml_hash_set, keys);

    STRUCT(ggml_cgraph);
    FIELD(ggml_cgraph, size);
    FIELD(ggml_cgraph, n_nodes);
    FIELD(ggml_cgraph, n_leafs);
    FIELD(ggml_cgraph, nodes);
    FIELD(ggml_cgraph, grads);
    FIELD(ggml_cgraph, grad_accs);
    FIELD(ggml_cgraph, leafs);
    FIELD(ggml_cgraph, use_counts);
    FIELD(ggml_cgraph, visited_hash_set);
    FIELD(ggml_cgraph, order);
    FIELD(ggml_cgraph, uid);

    STRUCT(ggml_backend_buffer_type_i);
    FIELD(ggml_backend_buffer_type_i, get_name);
    FIELD(ggml_backend_buffer_type_i, alloc_buffer);
    FIELD(ggml_backend_buffer_type_i, get_alignment);
    FIELD(ggml_backend_buffer_type_i, get_max_size);
    FIELD(ggml_backend_buffer_type_i, get_alloc_size);
    FIELD(ggml_backend_buffer_type_i, is_host);

    STRUCT(ggml_backend_buffer_type);
    FIELD(ggml_backend_buffer_type, iface);
    FIELD(ggml_backend_buffer_type, device);
    FIELD(ggml_backend_buffer_type, context);

    STRUCT(ggml_backend_buffer_i);
    FIELD(ggml_backend_buffer_i, free_buffer);
    FIELD(ggml_backend_buffer_i, get_base);
    FIELD(ggml_backend_buffer_i, init_tensor);
    FIELD(ggml_backend_buffer_i, memset_tensor);
    FIELD(ggml_backend_buffer_i, set_tensor);
    FIELD(ggml_backend_buffer_i, get_tensor);
    FIELD(ggml_backend_buffer_i, set_tensor_2d);
    FIELD(ggml_backend_buffer_i, get_tensor_2d);
    FIELD(ggml_backend_buffer_i, cpy_tensor);
    FIELD(ggml_backend_buffer_i, clear);
    FIELD(ggml_backend_buffer_i, reset);

    STRUCT(ggml_backend_buffer);
    FIELD(ggml_backend_buffer, iface);
    FIELD(ggml_backend_buffer, buft);
    FIELD(ggml_backend_buffer, context);
    FIELD(ggml_backend_buffer, size);
    FIELD(ggml_backend_buffer, usage);

    STRUCT(ggml_backend_graph_optimize_params);
    FIELD(ggml_backend_graph_optimize_params, add_alloc_dep);
    FIELD(ggml_backend_graph_optimize_params, user_data);

    STRUCT(ggml_backend_i);
    FIELD(ggml_backend_i, get_name);
    FIELD(ggml_backend_i, free);
    FIELD(ggml_backend_i, set_tensor_async);
    FIELD(ggml_backend_i, get_tensor_async);
    FIELD(ggml_backend_i, set_tensor_2d_async);
    FIELD(ggml_backend_i, get_tensor_2d_async);
    FIELD(ggml_backend_i, cpy_tensor_async);
    FIELD(ggml_backend_i, synchronize);
    FIELD(ggml_backend_i, graph_plan_create);
    FIELD(ggml_backend_i, graph_plan_free);
    FIELD(ggml_backend_i, graph_plan_update);
    FIELD(ggml_backend_i, graph_plan_compute);
    FIELD(ggml_backend_i, graph_compute);
    FIELD(ggml_backend_i, event_record);
    FIELD(ggml_backend_i, event_wait);
    FIELD(ggml_backend_i, graph_optimize);

    STRUCT(ggml_backend);
    FIELD(ggml_backend, guid);
    FIELD(ggml_backend, iface);
    FIELD(ggml_backend, device);
    FIELD(ggml_backend, context);

    STRUCT(ggml_backend_event);
    FIELD(ggml_backend_event, device);
    FIELD(ggml_backend_event, context);

    STRUCT(ggml_backend_dev_caps);
    FIELD(ggml_backend_dev_caps, async);
    FIELD(ggml_backend_dev_caps, host_buffer);
    FIELD(ggml_backend_dev_caps, buffer_from_host_ptr);
    FIELD(ggml_backend_dev_caps, events);
    FIELD(ggml_backend_dev_caps, mmap_support);

    STRUCT(ggml_backend_dev_props);
    FIELD(ggml_backend_dev_props, name);
    FIELD(ggml_backend_dev_props, description);
    FIELD(ggml_backend_dev_props, memory_free);
    FIELD(ggml_backend_dev_props, memory_total);
    FIELD(ggml_backend_dev_props, type);
    FIELD(ggml_backend_dev_props, device_id);
    FIELD(ggml_backend_dev_props, caps);

    STRUCT(ggml_backend_device_i);
    FIELD(ggml_backend_device_i, get_name);
    FIELD(ggml_backend_device_i, get_description);
    FIELD(ggml_backend_device_i, get_memory);
    FIELD(ggml_backend_device_i, get_type);
    FIELD(ggml_backend_device_i, get_props);
    FIELD(ggml_backend_device_i, init_backend);
    FIELD(ggml_backend_device_i, get_buffer_type);
    FIELD(ggml_backend_device_i, get_host_buffer_type);
    FIELD(ggml_backend_device_i, buffer_from_host_ptr);
    FIELD(ggml_backend_device_i, supports_op);
    FIELD(ggml_backend_device_i, supports_buft);
    FIELD(ggml_backend_device_i, offload_op);
    FIELD(ggml_backend_device_i, event_new);
    FIELD(ggml_backend_device_i, event_free);
    FIELD(ggml_backend_device_i, event_synchronize);

    STRUCT(ggml_backend_device);
    FIELD(ggml_backend_device, iface);
    FIELD(ggml_backend_device, reg);
    FIELD(ggml_backend_device, context);

    STRUCT(ggml_backend_reg_i);
    FIELD(ggml_backend_reg_i, get_name);
    FIELD(ggml_backend_reg_i, get_device_count);
    FIELD(ggml_backend_reg_i, get_device);
    FIELD(ggml_backend_reg_i, get_proc_address);

    STRUCT(ggml_backend_reg);
    FIELD(ggml_backend_reg, api_version);
    FIELD(ggml_backend_reg, iface);
    FIELD(ggml_backend_reg, context);

    STRUCT(ggml_backend_feature);
    FIELD(ggml_backend_feature, name);
    FIELD(ggml_backend_feature, value);

    /* constants and enumerators */
    VALUE(GGML_MAX_DIMS);
    VALUE(GGML_MAX_OP_PARAMS);
    VALUE(GGML_MAX_SRC);
    VALUE(GGML_MAX_NAME);
    VALUE(GGML_BACKEND_API_VERSION);
    VALUE(GGML_ROPE_TYPE_NORMAL);
    VALUE(GGML_ROPE_TYPE_NEOX);
    VALUE(GGML_ROPE_TYPE_MROPE);
    VALUE(GGML_ROPE_TYPE_VISION);
    VALUE(GGML_ROPE_TYPE_IMROPE);
    VALUE(GGML_MROPE_SECTIONS);
    VALUE(GGML_STATUS_ALLOC_FAILED);
    VALUE(GGML_STATUS_FAILED);
    VALUE(GGML_STATUS_SUCCESS);
    VALUE(GGML_STATUS_ABORTED);
    VALUE(GGML_TYPE_F32);
    VALUE(GGML_TYPE_F16);
    VALUE(GGML_TYPE_Q4_0);
    VALUE(GGML_TYPE_Q4_1);
    VALUE(GGML_TYPE_Q5_0);
    VALUE(GGML_TYPE_Q5_1);
    VALUE(GGML_TYPE_Q8_0);
    VALUE(GGML_TYPE_Q8_1);
    VALUE(GGML_TYPE_Q2_K);
    VALUE(GGML_TYPE_Q3_K);
    VALUE(GGML_TYPE_Q4_K);
    VALUE(GGML_TYPE_Q5_K);
    VALUE(GGML_TYPE_Q6_K);
    VALUE(GGML_TYPE_Q8_K);
    VALUE(GGML_TYPE_IQ2_XXS);
    VALUE(GGML_TYPE_IQ2_XS);
    VALUE(GGML_TYPE_IQ3_XXS);
    VALUE(GGML_TYPE_IQ1_S);
    VALUE(GGML_TYPE_IQ4_NL);
    VALUE(GGML_TYPE_IQ3_S);
    VALUE(GGML_TYPE_IQ2_S);
    VALUE(GGML_TYPE_IQ4_XS);
    VALUE(GGML_TYPE_I8);
    VALUE(GGML_TYPE_I16);
    VALUE(GGML_TYPE_I32);
    VALUE(GGML_TYPE_I64);
    VALUE(GGML_TYPE_F64);
    VALUE(GGML_TYPE_IQ1_M);
    VALUE(GGML_TYPE_BF16);
    VALUE(GGML_TYPE_TQ1_0);
    VALUE(GGML_TYPE_TQ2_0);
    VALUE(GGML_TYPE_MXFP4);
    VALUE(GGML_TYPE_NVFP4);
    VALUE(GGML_TYPE_Q1_0);
    VALUE(GGML_TYPE_Q2_0);
    VALUE(GGML_TYPE_COUNT);
    VALUE(GGML_PREC_UNDEFINED);
    VALUE(GGML_PREC_DEFAULT);
    VALUE(GGML_PREC_F32);
    VALUE(GGML_PREC_BF16);
    VALUE(GGML_PREC_F16);
    VALUE(GGML_PREC_Q8);
    VALUE(GGML_PREC_Q4);
    VALUE(GGML_HINT_NONE);
    VALUE(GGML_HINT_SRC0_IS_HADAMARD);
    VALUE(GGML_OP_NONE);
    VALUE(GGML_OP_DUP);
    VALUE(GGML_OP_ADD);
    VALUE(GGML_OP_ADD_ID);
    VALUE(GGML_OP_ADD1);
    VALUE(GGML_OP_ACC);
    VALUE(GGML_OP_SUB);
    VALUE(GGML_OP_MUL);
    VALUE(GGML_OP_DIV);
    VALUE(GGML_OP_SQR);
    VALUE(GGML_OP_SQRT);
    VALUE(GGML_OP_LOG);
    VALUE(GGML_OP_SIN);
    VALUE(GGML_OP_COS);
    VALUE(GGML_OP_SUM);
    VALUE(GGML_OP_SUM_ROWS);
    VALUE(GGML_OP_CUMSUM);
    VALUE(GGML_OP_MEAN);
    VALUE(GGML_OP_ARGMAX);
    VALUE(GGML_OP_COUNT_EQUAL);
    VALUE(GGML_OP_REPEAT);
    VALUE(GGML_OP_REPEAT_BACK);
    VALUE(GGML_OP_CONCAT);
    VALUE(GGML_OP_SILU_BACK);
    VALUE(GGML_OP_NORM);
    VALUE(GGML_OP_RMS_NORM);
    VALUE(GGML_OP_RMS_NORM_BACK);
    VALUE(GGML_OP_GROUP_NORM);
    VALUE(GGML_OP_L2_NORM);
    VALUE(GGML_OP_MUL_MAT);
    VALUE(GGML_OP_MUL_MAT_ID);
    VALUE(GGML_OP_OUT_PROD);
    VALUE(GGML_OP_SCALE);
    VALUE(GGML_OP_SET);
    VALUE(GGML_OP_CPY);
    VALUE(GGML_OP_CONT);
    VALUE(GGML_OP_RESHAPE);
    VALUE(GGML_OP_VIEW);
    VALUE(GGML_OP_PERMUTE);
    VALUE(GGML_OP_TRANSPOSE);
    VALUE(GGML_OP_GET_ROWS);
    VALUE(GGML_OP_GET_ROWS_BACK);
    VALUE(GGML_OP_SET_ROWS);
    VALUE(GGML_OP_DIAG);
    VALUE(GGML_OP_DIAG_MASK_INF);
    VALUE(GGML_OP_DIAG_MASK_ZERO);
    VALUE(GGML_OP_SOFT_MAX);
    VALUE(GGML_OP_SOFT_MAX_BACK);
    VALUE(GGML_OP_ROPE);
    VALUE(GGML_OP_ROPE_BACK);
    VALUE(GGML_OP_CLAMP);
    VALUE(GGML_OP_CONV_TRANSPOSE_1D);
    VALUE(GGML_OP_IM2COL);
    VALUE(GGML_OP_IM2COL_BACK);
    VALUE(GGML_OP_IM2COL_3D);
    VALUE(GGML_OP_COL2IM_1D);
    VALUE(GGML_OP_CONV_2D);
    VALUE(GGML_OP_CONV_3D);
    VALUE(GGML_OP_CONV_2D_DW);
    VALUE(GGML_OP_CONV_TRANSPOSE_2D);
    VALUE(GGML_OP_POOL_1D);
    VALUE(GGML_OP_POOL_2D);
    VALUE(GGML_OP_POOL_2D_BACK);
    VALUE(GGML_OP_UPSCALE);
    VALUE(GGML_OP_PAD);
    VALUE(GGML_OP_PAD_REFLECT_1D);
    VALUE(GGML_OP_ROLL);
    VALUE(GGML_OP_ARANGE);
    VALUE(GGML_OP_TIMESTEP_EMBEDDING);
    VALUE(GGML_OP_ARGSORT);
    VALUE(GGML_OP_TOP_K);
    VALUE(GGML_OP_LEAKY_RELU);
    VALUE(GGML_OP_TRI);
    VALUE(GGML_OP_FILL);
    VALUE(GGML_OP_FLASH_ATTN_EXT);
    VALUE(GGML_OP_FLASH_ATTN_BACK);
    VALUE(GGML_OP_SSM_CONV);
    VALUE(GGML_OP_SSM_SCAN);
    VALUE(GGML_OP_WIN_PART);
    VALUE(GGML_OP_WIN_UNPART);
    VALUE(GGML_OP_GET_REL_POS);
    VALUE(GGML_OP_ADD_REL_POS);
    VALUE(GGML_OP_RWKV_WKV6);
    VALUE(GGML_OP_GATED_LINEAR_ATTN);
    VALUE(GGML_OP_RWKV_WKV7);
    VALUE(GGML_OP_SOLVE_TRI);
    VALUE(GGML_OP_GATED_DELTA_NET);
    VALUE(GGML_OP_LIGHTNING_INDEXER);
    VALUE(GGML_OP_DSV4_HC_COMB);
    VALUE(GGML_OP_DSV4_HC_PRE);
    VALUE(GGML_OP_DSV4_HC_POST);
    VALUE(GGML_OP_UNARY);
    VALUE(GGML_OP_MAP_CUSTOM1);
    VALUE(GGML_OP_MAP_CUSTOM2);
    VALUE(GGML_OP_MAP_CUSTOM3);
    VALUE(GGML_OP_CUSTOM);
    VALUE(GGML_OP_CROSS_ENTROPY_LOSS);
    VALUE(GGML_OP_CROSS_ENTROPY_LOSS_BACK);
    VALUE(GGML_OP_OPT_STEP_ADAMW);
    VALUE(GGML_OP_OPT_STEP_SGD);
    VALUE(GGML_OP_GLU);
    VALUE(GGML_OP_COUNT);
    VALUE(GGML_UNARY_OP_ABS);
    VALUE(GGML_UNARY_OP_SGN);
    VALUE(GGML_UNARY_OP_NEG);
    VALUE(GGML_UNARY_OP_STEP);
    VALUE(GGML_UNARY_OP_TANH);
    VALUE(GGML_UNARY_OP_ELU);
    VALUE(GGML_UNARY_OP_RELU);
    VALUE(GGML_UNARY_OP_SIGMOID);
    VALUE(GGML_UNARY_OP_GELU);
    VALUE(GGML_UNARY_OP_GELU_QUICK);
    VALUE(GGML_UNARY_OP_SILU);
    VALUE(GGML_UNARY_OP_HARDSWISH);
    VALUE(GGML_UNARY_OP_HARDSIGMOID);
    VALUE(GGML_UNARY_OP_EXP);
    VALUE(GGML_UNARY_OP_EXPM1);
    VALUE(GGML_UNARY_OP_SOFTPLUS);
    VALUE(GGML_UNARY_OP_GELU_ERF);
    VALUE(GGML_UNARY_OP_XIELU);
    VALUE(GGML_UNARY_OP_FLOOR);
    VALUE(GGML_UNARY_OP_CEIL);
    VALUE(GGML_UNARY_OP_ROUND);
    VALUE(GGML_UNARY_OP_TRUNC);
    VALUE(GGML_UNARY_OP_COUNT);
    VALUE(GGML_GLU_OP_REGLU);
    VALUE(GGML_GLU_OP_GEGLU);
    VALUE(GGML_GLU_OP_SWIGLU);
    VALUE(GGML_GLU_OP_SWIGLU_OAI);
    VALUE(GGML_GLU_OP_GEGLU_ERF);
    VALUE(GGML_GLU_OP_GEGLU_QUICK);
    VALUE(GGML_GLU_OP_SWIGLU_CLAMP);
    VALUE(GGML_GLU_OP_COUNT);
    VALUE(GGML_TENSOR_FLAG_INPUT);
    VALUE(GGML_TENSOR_FLAG_OUTPUT);
    VALUE(GGML_TENSOR_FLAG_PARAM);
    VALUE(GGML_TENSOR_FLAG_LOSS);
    VALUE(GGML_TENSOR_FLAG_COMPUTE);
    VALUE(GGML_TRI_TYPE_UPPER_DIAG);
    VALUE(GGML_TRI_TYPE_UPPER);
    VALUE(GGML_TRI_TYPE_LOWER_DIAG);
    VALUE(GGML_TRI_TYPE_LOWER);
    VALUE(GGML_OP_POOL_MAX);
    VALUE(GGML_OP_POOL_AVG);
    VALUE(GGML_OP_POOL_COUNT);
    VALUE(GGML_SCALE_MODE_NEAREST);
    VALUE(GGML_SCALE_MODE_BILINEAR);
    VALUE(GGML_SCALE_MODE_BICUBIC);
    VALUE(GGML_SCALE_MODE_COUNT);
    VALUE(GGML_SCALE_FLAG_ALIGN_CORNERS);
    VALUE(GGML_SCALE_FLAG_ANTIALIAS);
    VALUE(GGML_SORT_ORDER_ASC);
    VALUE(GGML_SORT_ORDER_DESC);
    VALUE(GGML_LOG_LEVEL_NONE);
    VALUE(GGML_LOG_LEVEL_DEBUG);
    VALUE(GGML_LOG_LEVEL_INFO);
    VALUE(GGML_LOG_LEVEL_WARN);
    VALUE(GGML_LOG_LEVEL_ERROR);
    VALUE(GGML_LOG_LEVEL_CONT);
    VALUE(GGML_BACKEND_BUFFER_USAGE_ANY);
    VALUE(GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    VALUE(GGML_BACKEND_BUFFER_USAGE_COMPUTE);
    VALUE(GGML_BACKEND_DEVICE_TYPE_CPU);
    VALUE(GGML_BACKEND_DEVICE_TYPE_GPU);
    VALUE(GGML_BACKEND_DEVICE_TYPE_IGPU);
    VALUE(GGML_BACKEND_DEVICE_TYPE_ACCEL);
    VALUE(GGML_BACKEND_DEVICE_TYPE_META);
    VALUE(GGML_CGRAPH_EVAL_ORDER_LEFT_TO_RIGHT);
    VALUE(GGML_CGRAPH_EVAL_ORDER_RIGHT_TO_LEFT);
    VALUE(GGML_CGRAPH_EVAL_ORDER_COUNT);
    return 0;
}
