"""The field layout of every table in the TFLite flatbuffer schema (schema.fbs as shipped with ai-edge-litert 2.3
and tflite-micro), for :mod:`edgeact.runtimes.tflite_verify`.

Each table is a space-separated list of its fields in field-id order. A field's kind is ``1``/``2``/``4``/``8`` (a
scalar of that many bytes), ``str`` (a string), ``[n`` (a vector of n-byte scalars), ``[str`` (a vector of strings),
``Name`` (a table), ``[Name`` (a vector of tables) or ``U:Union`` (a union value; its type is the field before it).
In ``TABLES`` each field is ``name:kind``; ``-`` is a deprecated field id. ``UNIONS`` lists each union's member
tables by type code (``-`` for NONE). tests/test_tflite_fuzz.py checks this against the flatc-generated Python
bindings of the installed runtimes.
"""

from __future__ import annotations

TABLES: dict[str, str] = {
    "CustomQuantization": "custom:[1",
    "BlockwiseQuantization": "scales:4 zero_points:4 block_size:4 block_shape:[4",
    "MultiAxisQuantization": "scales:4 zero_points:4 block_size:4 quantized_dimensions:[4",
    "QuantizationParameters": (
        "min:[4 max:[4 scale:[4 zero_point:[8 details_type:1 details:U:QuantizationDetails "
        "quantized_dimension:4"
    ),
    "Int32Vector": "values:[4",
    "Uint16Vector": "values:[2",
    "Uint8Vector": "values:[1",
    "DimensionMetadata": (
        "format:1 dense_size:4 array_segments_type:1 array_segments:U:SparseIndexVector array_indices_type:1 "
        "array_indices:U:SparseIndexVector"
    ),
    "SparsityParameters": "traversal_order:[4 block_map:[4 dim_metadata:[DimensionMetadata",
    "VariantSubType": "shape:[4 type:1 has_rank:1",
    "Tensor": (
        "shape:[4 type:1 buffer:4 name:str quantization:QuantizationParameters is_variable:1 "
        "sparsity:SparsityParameters shape_signature:[4 has_rank:1 variant_tensors:[VariantSubType "
        "external_buffer:4"
    ),
    "OperatorCode": "deprecated_builtin_code:1 custom_code:str version:4 builtin_code:4",
    "Operator": (
        "opcode_index:4 inputs:[4 outputs:[4 builtin_options_type:1 builtin_options:U:BuiltinOptions "
        "custom_options:[1 custom_options_format:1 mutating_variable_inputs:[1 intermediates:[4 "
        "large_custom_options_offset:8 large_custom_options_size:8 builtin_options2_type:1 "
        "builtin_options2:U:BuiltinOptions2 debug_metadata_index:4"
    ),
    "SubGraph": "tensors:[Tensor inputs:[4 outputs:[4 operators:[Operator name:str debug_metadata_index:4",
    "Buffer": "data:[1 offset:8 size:8",
    "ExternalBufferGroup": "name:str",
    "ExternalBuffer": "id:4 group:4 offset:8 length:8 packing:str",
    "Metadata": "name:str buffer:4",
    "TensorMap": "name:str tensor_index:4",
    "SignatureDef": "inputs:[TensorMap outputs:[TensorMap signature_key:str -:- subgraph_index:4",
    "Model": (
        "version:4 operator_codes:[OperatorCode subgraphs:[SubGraph description:str buffers:[Buffer "
        "metadata_buffer:[4 metadata:[Metadata signature_defs:[SignatureDef "
        "external_buffer_groups:[ExternalBufferGroup external_buffers:[ExternalBuffer"
    ),
}

OPTIONS_TABLES: dict[str, str] = {
    "StablehloGatherOptions": "[8 [8 [8 8 [8 1",
    "StablehloTransposeOptions": "[8",
    "StablehloDotGeneralOptions": "[8 [8 [8 [8 [4",
    "StablehloReduceWindowOptions": "[8 [8 [8 [8 [8 4",
    "StablehloWhileOptions": "4 4",
    "StablehloSortOptions": "8 1 4",
    "StablehloConcatenateOptions": "8",
    "StablehloBroadcastInDimOptions": "[8",
    "StablehloCompareOptions": "4 4",
    "StablehloDynamicSliceOptions": "[8",
    "StablehloPadOptions": "[8 [8 [8",
    "StablehloIotaOptions": "8",
    "StablehloCustomCallOptions": "str 1 str 4 [4 [1",
    "StablehloReduceOptions": "[8 4",
    "StablehloSliceOptions": "[8 [8 [8",
    "StablehloConvolutionOptions": "[8 [8 [8 [8 [1 8 8 [8 8 8 [8 8 8 [8 8 8 [4",
    "StablehloScatterOptions": "1 [8 [8 [8 8 1 4",
    "StablehloCaseOptions": "[4",
    "StablehloRngBitGeneratorOptions": "1",
    "Conv2DOptions": "1 4 4 1 4 4 1",
    "Conv3DOptions": "1 4 4 4 1 4 4 4",
    "Pool2DOptions": "1 4 4 4 4 1",
    "DepthwiseConv2DOptions": "1 4 4 4 1 4 4",
    "ConcatEmbeddingsOptions": "4 [4 [4",
    "LSHProjectionOptions": "1",
    "SVDFOptions": "4 1 1",
    "RNNOptions": "1 1",
    "SequenceRNNOptions": "1 1 1",
    "BidirectionalSequenceRNNOptions": "1 1 1 1",
    "FullyConnectedOptions": "1 1 1 1 1 [1",
    "SoftmaxOptions": "4",
    "ConcatenationOptions": "4 1",
    "AddOptions": "1 1",
    "MulOptions": "1",
    "L2NormOptions": "1",
    "LocalResponseNormalizationOptions": "4 4 4 4",
    "LSTMOptions": "1 4 4 1 1",
    "UnidirectionalSequenceLSTMOptions": "1 4 4 1 1 1",
    "BidirectionalSequenceLSTMOptions": "1 4 4 1 1 1",
    "ResizeBilinearOptions": "- - 1 1",
    "ResizeNearestNeighborOptions": "1 1",
    "CallOptions": "4",
    "PadOptions": "",
    "PadV2Options": "",
    "ReshapeOptions": "[4",
    "SpaceToBatchNDOptions": "",
    "BatchToSpaceNDOptions": "",
    "SkipGramOptions": "4 4 1",
    "SpaceToDepthOptions": "4",
    "DepthToSpaceOptions": "4",
    "SubOptions": "1 1",
    "DivOptions": "1",
    "TopKV2Options": "",
    "EmbeddingLookupSparseOptions": "1",
    "GatherOptions": "4 4",
    "TransposeOptions": "",
    "ExpOptions": "",
    "CosOptions": "",
    "ReducerOptions": "1",
    "SqueezeOptions": "[4",
    "SplitOptions": "4",
    "SplitVOptions": "4",
    "StridedSliceOptions": "4 4 4 4 4 1",
    "LogSoftmaxOptions": "",
    "CastOptions": "1 1",
    "DequantizeOptions": "",
    "MaximumMinimumOptions": "",
    "TileOptions": "",
    "ArgMaxOptions": "1",
    "ArgMinOptions": "1",
    "GreaterOptions": "",
    "GreaterEqualOptions": "",
    "LessOptions": "",
    "LessEqualOptions": "",
    "NegOptions": "",
    "SelectOptions": "",
    "SliceOptions": "",
    "TransposeConvOptions": "1 4 4 1 1",
    "ExpandDimsOptions": "",
    "SparseToDenseOptions": "1",
    "EqualOptions": "",
    "NotEqualOptions": "",
    "ShapeOptions": "1",
    "RankOptions": "",
    "PowOptions": "",
    "FakeQuantOptions": "4 4 4 1",
    "PackOptions": "4 4",
    "LogicalOrOptions": "",
    "OneHotOptions": "4",
    "AbsOptions": "",
    "HardSwishOptions": "",
    "LogicalAndOptions": "",
    "LogicalNotOptions": "",
    "UnpackOptions": "4 4",
    "FloorDivOptions": "",
    "SquareOptions": "",
    "ZerosLikeOptions": "",
    "FillOptions": "",
    "FloorModOptions": "",
    "RangeOptions": "",
    "LeakyReluOptions": "4",
    "SquaredDifferenceOptions": "",
    "MirrorPadOptions": "1",
    "UniqueOptions": "1",
    "ReverseV2Options": "",
    "AddNOptions": "",
    "GatherNdOptions": "",
    "WhereOptions": "",
    "ReverseSequenceOptions": "4 4",
    "MatrixDiagOptions": "",
    "QuantizeOptions": "",
    "MatrixSetDiagOptions": "",
    "IfOptions": "4 4",
    "CallOnceOptions": "4",
    "WhileOptions": "4 4",
    "NonMaxSuppressionV4Options": "",
    "NonMaxSuppressionV5Options": "",
    "ScatterNdOptions": "",
    "SelectV2Options": "",
    "DensifyOptions": "",
    "SegmentSumOptions": "",
    "BatchMatMulOptions": "1 1 1",
    "CumsumOptions": "1 1",
    "BroadcastToOptions": "",
    "Rfft2dOptions": "",
    "HashtableOptions": "4 1 1",
    "HashtableFindOptions": "",
    "HashtableImportOptions": "",
    "HashtableSizeOptions": "",
    "VarHandleOptions": "str str",
    "ReadVariableOptions": "",
    "AssignVariableOptions": "",
    "RandomOptions": "8 8",
    "BucketizeOptions": "[4",
    "GeluOptions": "1",
    "DynamicUpdateSliceOptions": "",
    "UnsortedSegmentProdOptions": "",
    "UnsortedSegmentMaxOptions": "",
    "UnsortedSegmentSumOptions": "",
    "ATan2Options": "",
    "UnsortedSegmentMinOptions": "",
    "SignOptions": "",
    "BitcastOptions": "",
    "BitwiseXorOptions": "",
    "RightShiftOptions": "",
    "DilateOptions": "",
    "ReduceWindowOptions": "4",
    "StableHLOCompositeOptions": "str 4 [1 1 4",
    "StablehloShiftLeftOptions": "",
}

UNIONS: dict[str, str] = {
    "QuantizationDetails": "- CustomQuantization BlockwiseQuantization MultiAxisQuantization",
    "SparseIndexVector": "- Int32Vector Uint16Vector Uint8Vector",
    "BuiltinOptions": (
        "- Conv2DOptions DepthwiseConv2DOptions ConcatEmbeddingsOptions LSHProjectionOptions Pool2DOptions "
        "SVDFOptions RNNOptions FullyConnectedOptions SoftmaxOptions ConcatenationOptions AddOptions "
        "L2NormOptions LocalResponseNormalizationOptions LSTMOptions ResizeBilinearOptions CallOptions "
        "ReshapeOptions SkipGramOptions SpaceToDepthOptions EmbeddingLookupSparseOptions MulOptions "
        "PadOptions GatherOptions BatchToSpaceNDOptions SpaceToBatchNDOptions TransposeOptions ReducerOptions "
        "SubOptions DivOptions SqueezeOptions SequenceRNNOptions StridedSliceOptions ExpOptions TopKV2Options "
        "SplitOptions LogSoftmaxOptions CastOptions DequantizeOptions MaximumMinimumOptions ArgMaxOptions "
        "LessOptions NegOptions PadV2Options GreaterOptions GreaterEqualOptions LessEqualOptions "
        "SelectOptions SliceOptions TransposeConvOptions SparseToDenseOptions TileOptions ExpandDimsOptions "
        "EqualOptions NotEqualOptions ShapeOptions PowOptions ArgMinOptions FakeQuantOptions PackOptions "
        "LogicalOrOptions OneHotOptions LogicalAndOptions LogicalNotOptions UnpackOptions FloorDivOptions "
        "SquareOptions ZerosLikeOptions FillOptions BidirectionalSequenceLSTMOptions "
        "BidirectionalSequenceRNNOptions UnidirectionalSequenceLSTMOptions FloorModOptions RangeOptions "
        "ResizeNearestNeighborOptions LeakyReluOptions SquaredDifferenceOptions MirrorPadOptions AbsOptions "
        "SplitVOptions UniqueOptions ReverseV2Options AddNOptions GatherNdOptions CosOptions WhereOptions "
        "RankOptions ReverseSequenceOptions MatrixDiagOptions QuantizeOptions MatrixSetDiagOptions "
        "HardSwishOptions IfOptions WhileOptions DepthToSpaceOptions NonMaxSuppressionV4Options "
        "NonMaxSuppressionV5Options ScatterNdOptions SelectV2Options DensifyOptions SegmentSumOptions "
        "BatchMatMulOptions CumsumOptions CallOnceOptions BroadcastToOptions Rfft2dOptions Conv3DOptions "
        "HashtableOptions HashtableFindOptions HashtableImportOptions HashtableSizeOptions VarHandleOptions "
        "ReadVariableOptions AssignVariableOptions RandomOptions BucketizeOptions GeluOptions "
        "DynamicUpdateSliceOptions UnsortedSegmentProdOptions UnsortedSegmentMaxOptions "
        "UnsortedSegmentMinOptions UnsortedSegmentSumOptions ATan2Options SignOptions BitcastOptions "
        "BitwiseXorOptions RightShiftOptions"
    ),
    "BuiltinOptions2": (
        "- StablehloConcatenateOptions StablehloBroadcastInDimOptions StablehloSliceOptions "
        "StablehloConvolutionOptions StablehloCustomCallOptions StablehloReduceOptions "
        "StablehloScatterOptions StablehloCompareOptions StablehloDynamicSliceOptions StablehloPadOptions "
        "StablehloIotaOptions StablehloDotGeneralOptions StablehloReduceWindowOptions StablehloSortOptions "
        "StablehloWhileOptions StablehloGatherOptions StablehloTransposeOptions DilateOptions "
        "StablehloRngBitGeneratorOptions ReduceWindowOptions StableHLOCompositeOptions "
        "StablehloShiftLeftOptions StablehloCaseOptions"
    ),
}
