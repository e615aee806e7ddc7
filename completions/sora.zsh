
#compdef sora

_sora_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _SORA_COMPLETE=complete_zsh sora)
}

compdef _sora_completion sora

