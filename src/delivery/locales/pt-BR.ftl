# Mensagens de verificação em português do Brasil.

email-subject = Seu código de verificação do { $service }
email-intro = Seu código de verificação do { $service } é:
email-expiry =
    { $minutes ->
        [one] Ele expira em { $minutes } minuto.
       *[other] Ele expira em { $minutes } minutos.
    }
email-enter = Digite-o onde você o solicitou.
email-ignore = Se você não solicitou um código, ignore esta mensagem.
email-never-share = Nunca compartilhe este código com ninguém: ninguém do { $service } vai pedi-lo a você.

# Um único SMS: só caracteres GSM-7, que não incluem ó, ç, ã; por isso "codigo" sem acento,
# como é costume em SMS no Brasil. No máximo 160.
sms-body =
    { $minutes ->
        [one] Seu codigo { $service } é: { $code }. Expira em { $minutes } minuto. Nunca compartilhe este codigo com ninguém; nunca vamos pedi-lo.
       *[other] Seu codigo { $service } é: { $code }. Expira em { $minutes } minutos. Nunca compartilhe este codigo com ninguém; nunca vamos pedi-lo.
    }
