function __tensor_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __tensor_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __tensor_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __tensor_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __tensor_parse_tokens -S
    set -l unparsed_tokens (__tensor_tokens -pc)
    switch $unparsed_tokens[1]
    case 'tensor'
        __tensor_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'info'
            __tensor_parse_subcommand -r 1 'stats' 'json' 'version' 'h/help'
        case 'from'
            __tensor_parse_subcommand 2 'name=' 'dtype=' 'meta=+' 'saturate' 'q/quiet' 'o/output=' 'level=' 'no-shuffle' 'version' 'h/help'
        case 'to'
            __tensor_parse_subcommand 2 'tensor=' 'compress' 'header' 'lines=' 'o/output=' 'version' 'h/help'
        case 'cat'
            __tensor_parse_subcommand -r 1 'o/output=' 'level=' 'no-shuffle' 'version' 'h/help'
        case 'head'
            __tensor_parse_subcommand 1 'n/rows=' 'o/output=' 'level=' 'no-shuffle' 'version' 'h/help'
        case 'slice'
            __tensor_parse_subcommand 1 'start=' 'end=' 'o/output=' 'level=' 'no-shuffle' 'version' 'h/help'
        case 'select'
            __tensor_parse_subcommand -r 1 'input=' 'o/output=' 'level=' 'no-shuffle' 'version' 'h/help'
        case 'drop'
            __tensor_parse_subcommand -r 1 'input=' 'o/output=' 'level=' 'no-shuffle' 'version' 'h/help'
        case 'rename'
            __tensor_parse_subcommand -r 1 'input=' 'o/output=' 'level=' 'no-shuffle' 'version' 'h/help'
        case 'paste'
            __tensor_parse_subcommand -r 1 'o/output=' 'level=' 'no-shuffle' 'version' 'h/help'
        case 'split'
            __tensor_parse_subcommand 1 'shards=' 'rows=' 'prefix=' 'level=' 'force' 'version' 'h/help'
        case 'take'
            __tensor_parse_subcommand 1 'indices=' 'index-name=' 'o/output=' 'level=' 'no-shuffle' 'version' 'h/help'
        case 'where'
            __tensor_parse_subcommand 2 'drop-condition' 'o/output=' 'level=' 'no-shuffle' 'version' 'h/help'
        case 'help'
            __tensor_parse_subcommand -r 1 'version'
        end
    end
end

function __tensor_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __tensor_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __tensor_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __tensor_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__tensor_tokens -p)
    if test -z "$(__tensor_tokens -t)"
        set -l index (count (__tensor_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'tensor' -f
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'info' -d 'Describe the tensors of streams: names, dtypes, shapes, metadata.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'from' -d 'Convert npy, npz, safetensors, CSV or TSV into a tensor stream.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'to' -d 'Convert a tensor stream to npy, npz, safetensors, CSV or TSV.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'cat' -d 'Concatenate streams: rows of tensors with the same name follow each other.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'head' -d 'The first rows of every tensor.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'slice' -d 'Rows START..<END of every tensor (0-based, END excluded).'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'select' -d 'Keep only the named tensors.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'drop' -d 'Remove the named tensors.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'rename' -d 'Rename tensors.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'paste' -d 'Join the tensors of several streams that have the same rows.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'split' -d 'Shard the rows of a stream into several files, for parallel work.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'take' -d 'The rows at given indices, in their order (repeats allowed), of every row tensor.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'where' -d 'Keep the rows where an integer tensor has a given value (a streaming filter).'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor info" stats' -l 'stats' -d 'Also print min, max, mean and the count of NaN/Inf per tensor.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor info" json' -l 'json' -d 'Print JSON instead of a table.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor info" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor info" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor from" -eq 1' -fka 'npy npz safetensors csv tsv'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor from" name' -l 'name' -d 'Name of the tensor (npy, csv, tsv).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor from" dtype' -l 'dtype' -d 'Convert elements to this dtype (f32, f64, f16, bf16, i64, ...).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor from"' -l 'meta' -d 'Add metadata to every tensor (repeatable).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor from" saturate' -l 'saturate' -d 'With --dtype, store values the dtype cannot hold as its nearest (NaN as 0, beyond the range as the largest or smallest, fractions truncated, overflowing floats as inf); CSV/TSV: read numbers beyond a double\'s range as inf. Without it such values are refused, naming the row.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor from" q quiet' -s 'q' -l 'quiet' -d 'Do not print notes (npz: the arrays skipped).'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor from" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor from" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor from" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor from" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor from" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_positional "tensor to" -eq 1' -fka 'npy npz safetensors csv tsv'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor to" tensor' -l 'tensor' -d 'The tensor to write (npy, csv, tsv).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor to" compress' -l 'compress' -d 'Deflate the members of an npz archive.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor to" header' -l 'header' -d 'CSV/TSV: start with a line of column names.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor to" lines' -l 'lines' -d 'CSV/TSV: replace each line number of the integer tensor (\'indices\', \'id\' or --tensor) by that line of FILE (0-based).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor to" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically) instead of standard output.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor to" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor to" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor cat" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor cat" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor cat" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor cat" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor cat" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor head" n rows' -s 'n' -l 'rows' -d 'Rows to keep.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor head" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor head" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor head" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor head" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor head" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor slice" start' -l 'start' -d 'First row (0-based).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor slice" end' -l 'end' -d 'Row after the last (default: to the end).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor slice" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor slice" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor slice" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor slice" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor slice" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor select" input' -l 'input' -d 'Stream to read (default: standard input).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor select" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor select" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor select" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor select" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor select" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor drop" input' -l 'input' -d 'Stream to read (default: standard input).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor drop" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor drop" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor drop" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor drop" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor drop" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor rename" input' -l 'input' -d 'Stream to read (default: standard input).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor rename" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor rename" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor rename" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor rename" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor rename" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor paste" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor paste" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor paste" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor paste" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor paste" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor split" shards' -l 'shards' -d 'Number of shards (rows divided as evenly as possible).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor split" rows' -l 'rows' -d 'Rows per shard (the last may have fewer).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor split" prefix' -l 'prefix' -d 'Prefix of the shard files (may include a directory).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor split" level' -l 'level' -d 'zstd compression level, -7 to 19 (default 1). Without it, a record that goes whole to one shard is copied as it came, still compressed.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor split" force' -l 'force' -d 'Replace the shards of an earlier run under the same prefix (and remove the extra ones).'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor split" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor split" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor take" indices' -l 'indices' -d 'Stream holding the row indices.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor take" index-name' -l 'index-name' -d 'Name of the index tensor in --indices (default: its only tensor).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor take" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor take" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor take" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor take" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor take" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor where" drop-condition' -l 'drop-condition' -d 'Leave the condition tensor out of the output.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor where" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor where" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor where" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor where" version' -l 'version' -d 'Show the version.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor where" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'tensor' -n '__tensor_should_offer_completions_for_flags_or_options "tensor help" version' -l 'version' -d 'Show the version.'
