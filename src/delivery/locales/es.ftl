# Mensajes de verificación en español (tuteo).

email-subject = Tu código de verificación de { $service }
email-intro = Tu código de verificación de { $service } es:
email-expiry =
    { $minutes ->
        [one] Caduca en { $minutes } minuto.
       *[other] Caduca en { $minutes } minutos.
    }
email-enter = Introdúcelo donde lo solicitaste.
email-ignore = Si no has solicitado ningún código, ignora este mensaje.
email-never-share = No compartas nunca este código: nadie de { $service } te lo pedirá jamás.

# Un solo SMS: solo caracteres GSM-7, que no incluyen á, í, ó, ú; por eso «clave» en lugar de
# «código», sin faltas de ortografía. 160 como máximo.
sms-body =
    { $minutes ->
        [one] Tu clave de { $service } es: { $code }. Caduca en { $minutes } minuto. No la compartas con nadie; nunca te la vamos a pedir.
       *[other] Tu clave de { $service } es: { $code }. Caduca en { $minutes } minutos. No la compartas con nadie; nunca te la vamos a pedir.
    }
