function __emb-sim_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __emb-sim_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __emb-sim_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __emb-sim_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __emb-sim_parse_tokens -S
    set -l unparsed_tokens (__emb-sim_tokens -pc)
    switch $unparsed_tokens[1]
    case 'emb-sim'
        __emb-sim_parse_subcommand 1 'corpus=' 'top-k=' 'paired=' 'matrix' 'beta=' 'normalize=' 'corpus-offset=' 'merge=+' 'confidence' 'no-confidence' 'query-block=' 'corpus-block=' 'memory=' 'precision=' 'v/verbose' 'threads=' 'o/output=' 'level=' 'no-shuffle' 'q/quiet' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __emb-sim_parse_subcommand -r 1 'version'
        end
    end
end

function __emb-sim_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __emb-sim_parse_subcommand -S -a positional_count
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

function __emb-sim_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __emb-sim_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__emb-sim_tokens -p)
    if test -z "$(__emb-sim_tokens -t)"
        set -l index (count (__emb-sim_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'emb-sim' -f
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" corpus' -l 'corpus' -d 'Corpus stream (a file: it is decoded once, or once per block of queries when it does not fit in --memory).' -rfka ''
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" top-k' -l 'top-k' -d 'Best K corpus rows per query: writes \'indices\' (N×K) and \'scores\' (N×K).' -rfka ''
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" paired' -l 'paired' -d 'Score row i of the queries with row i of FILE: writes \'scores\' (N).' -rfka ''
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" matrix' -l 'matrix' -d 'Write the full matrix \'scores\' (queries × corpus, or queries × queries without --corpus).'
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" beta' -l 'beta' -d 'β of the uncertainty penalty (0: plain cosine).' -rfka ''
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" normalize' -l 'normalize' -d 'Normalise means: auto (rows that are not unit vectors, delta method), delta, simple, none.' -rfka 'auto delta simple none'
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" corpus-offset' -l 'corpus-offset' -d 'Add N to the corpus indices (default: the corpus\'s \'row_offset\' metadata, which \'tensor split\' writes, or 0).' -rfka ''
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim"' -l 'merge' -d 'Merge top-k results of the same queries over corpus shards into one top-k (with --top-k).' -rfka ''
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" confidence' -l 'confidence' -d 'With --top-k K ≥ 2: write \'margin\' (N, best minus second-best score) and, with variances, \'top1_sigma\' (N, σ_s of the top-1 pair).'
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" no-confidence' -l 'no-confidence' -d 'With --top-k K ≥ 2: write \'margin\' (N, best minus second-best score) and, with variances, \'top1_sigma\' (N, σ_s of the top-1 pair).'
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" query-block' -l 'query-block' -d 'Queries per block (default: with --top-k, as many as half of --memory holds; else 1024).' -rfka ''
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" corpus-block' -l 'corpus-block' -d 'Corpus rows per block (default: 4096; with --top-k, fewer, down to 256, when --memory cannot hold the search\'s buffers for 4096).' -rfka ''
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" memory' -l 'memory' -d 'Memory for --top-k\'s blocks of queries and the decoded corpus kept between them: bytes with an optional K, M, G or T suffix (powers of 1024), or a percentage of the memory the process may use (the machine\'s, or a cgroup\'s or ulimit -v\'s limit when lower). The search holds at least its score buffers, one corpus block and 256 queries: a small budget takes smaller corpus blocks (see --corpus-block), and one below what 256 rows need is exceeded, with a warning.' -rfka ''
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" precision' -l 'precision' -d 'Arithmetic of --top-k\'s first pass: f32, or int16 or int8 (plain cosine: integer scores, then the pairs that can still enter the top-k scored again exactly; the same top-k).' -rfka 'f32 int16 int8'
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" v verbose' -l 'verbose' -s 'v' -d 'Print the BLAS kernel and threads, how --top-k uses its memory and, with --precision int16 or int8, its integer kernel and how many pairs were scored again, on standard error.'
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" threads' -l 'threads' -d 'Threads to use (default: all cores). With 1 the program runs on one thread: its computing, and the reading and the compressing of streams, which otherwise run beside it.' -rfka ''
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" o output' -s 'o' -l 'output' -d 'Write to FILE (atomically: all or nothing) instead of standard output.' -rfka ''
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" level' -l 'level' -d 'zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).' -rfka ''
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" no-shuffle' -l 'no-shuffle' -d 'Do not byte-shuffle numbers before compressing them.'
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" q quiet' -s 'q' -l 'quiet' -d 'Print no notes or warnings on standard error (errors are always printed).'
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" version' -l 'version' -d 'Show the version.'
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_positional "emb-sim" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'emb-sim' -n '__emb-sim_should_offer_completions_for_flags_or_options "emb-sim help" version' -l 'version' -d 'Show the version.'
